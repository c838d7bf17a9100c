package node

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/edgenode/edgenode/kv"
	"github.com/edgenode/edgenode/node/core"
)

// TestServersSharingRooms: the servers a user's presence goes to are those
// with a member in a room the user is joined to, whether the user is in a
// few rooms (scanned one by one) or in many (one scan of the whole table),
// and not those of a room the user is not in.
func TestServersSharingRooms(t *testing.T) {
	tests := []struct {
		name  string
		rooms int
	}{
		{name: "few rooms", rooms: 3},
		{name: "many rooms", rooms: roomsScannedOneByOne + 6},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := newTestNode(t)
			ctx := context.Background()
			alice, bob := register(t, n, "alice"), register(t, n, "bob")
			var rooms []string
			for range tc.rooms {
				id, err := n.CreateRoom(ctx, core.CreateRoomRequest{Creator: alice.UserID, DeviceID: alice.DeviceID})
				if err != nil {
					t.Fatal(err)
				}
				rooms = append(rooms, id)
			}
			other, err := n.CreateRoom(ctx, core.CreateRoomRequest{Creator: bob.UserID, DeviceID: bob.DeviceID})
			if err != nil {
				t.Fatal(err)
			}
			// Remote members, as a join over federation records them.
			err = n.DB.Update(func(tx *kv.Txn) error {
				for i, id := range rooms {
					if err := tx.Set(core.RoomServerKey(id, fmt.Sprintf("s%d.example", i%3)), nil); err != nil {
						return err
					}
				}
				return tx.Set(core.RoomServerKey(other, "bobs-only.example"), nil)
			})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			err = n.DB.View(func(tx *kv.Txn) error {
				got, err = serversSharingRooms(tx, alice.UserID)
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			want := []string{"s0.example", "s1.example", "s2.example"}[:min(tc.rooms, 3)]
			if !slices.Equal(got, want) {
				t.Errorf("alice's presence goes to %v, want %v", got, want)
			}
		})
	}
}
