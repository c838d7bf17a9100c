package node

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/edgenode/edgenode/node/core"
)

func TestDeviceListChanges(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	n := newTestNode(t)
	alice := e2eeUser(t, n, "alice", "A1")
	bob := e2eeUser(t, n, "bob", "B1")
	carol := e2eeUser(t, n, "carol", "C1")
	roomID, err := n.CreateRoom(ctx, core.CreateRoomRequest{Creator: alice.UserID, Preset: core.PresetPublicChat})
	if err != nil {
		t.Fatal(err)
	}
	membership(t, n, bob, roomID, bob.UserID, "join")
	aliceKey := deviceKeysFor(t, newTestKey(t), alice.UserID, "A1")

	steps := []struct {
		name string
		do   func(t *testing.T)
		// changed is who each user sees in the change's window.
		alice, bob, carol []string
	}{
		{"device keys uploaded", func(t *testing.T) {
			if _, err := n.UploadKeys(ctx, alice.UserID, "A1", aliceKey, nil, nil); err != nil {
				t.Fatal(err)
			}
		}, []string{alice.UserID}, []string{alice.UserID}, []string{}},
		{"the same device keys again", func(t *testing.T) {
			if _, err := n.UploadKeys(ctx, alice.UserID, "A1", aliceKey, nil, nil); err != nil {
				t.Fatal(err)
			}
		}, []string{}, []string{}, []string{}},
		{"one-time keys only", func(t *testing.T) {
			if _, err := n.UploadKeys(ctx, alice.UserID, "A1", nil, keyMap("signed_curve25519:k", "k"), nil); err != nil {
				t.Fatal(err)
			}
		}, []string{}, []string{}, []string{}},
		{"new device", func(t *testing.T) { addDevice(t, n, bob.UserID, "B2") },
			[]string{bob.UserID}, []string{bob.UserID}, []string{}},
		{"device deleted", func(t *testing.T) {
			if err := n.DeleteDevice(ctx, bob.UserID, "B2"); err != nil {
				t.Fatal(err)
			}
		}, []string{bob.UserID}, []string{bob.UserID}, []string{}},
		{"cross-signing keys", func(t *testing.T) { newCrossSigning(t).upload(t, n, alice.UserID) },
			[]string{alice.UserID}, []string{alice.UserID}, []string{}},
		{"a stranger's new device", func(t *testing.T) { addDevice(t, n, carol.UserID, "C2") },
			[]string{}, []string{}, []string{carol.UserID}},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			from := n.DeviceListPosition()
			st.do(t)
			to := n.DeviceListPosition()
			for _, v := range []struct {
				user string
				want []string
			}{{alice.UserID, st.alice}, {bob.UserID, st.bob}, {carol.UserID, st.carol}} {
				got, err := n.DeviceListChangesSince(ctx, v.user, from, to)
				if err != nil || !slices.Equal(got, v.want) {
					t.Errorf("%s sees %v, %v; want %v", v.user, got, err, v.want)
				}
			}
		})
	}

	// The window is (from, to]: from excludes, to includes.
	pos := n.DeviceListPosition()
	addDevice(t, n, alice.UserID, "A2")
	next := n.DeviceListPosition()
	windows := []struct {
		name     string
		from, to uint64
		want     []string
	}{
		{"window holding the change", pos, next, []string{alice.UserID}},
		{"from at the change", next, next + 5, []string{}},
		{"to before the change", 0, pos, []string{bob.UserID}}, // alice's earlier entries moved to her latest
		{"empty window", next, pos, []string{}},
	}
	for _, w := range windows {
		t.Run(w.name, func(t *testing.T) {
			got, err := n.DeviceListChangesSince(ctx, bob.UserID, w.from, w.to)
			if err != nil || !slices.Equal(got, w.want) {
				t.Fatalf("got %v, %v; want %v", got, err, w.want)
			}
		})
	}

	// One entry per user, however many changes.
	if got := countKeys(t, n, tDeviceList); got != 3 {
		t.Fatalf("change log holds %d entries, want 3 (one per user)", got)
	}
}

func TestDeviceListChangeWakesRoomMates(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	n := newTestNode(t)
	alice := e2eeUser(t, n, "alice", "A1")
	bob := e2eeUser(t, n, "bob", "B1")
	carol := e2eeUser(t, n, "carol", "C1")
	roomID, err := n.CreateRoom(ctx, core.CreateRoomRequest{Creator: alice.UserID, Preset: core.PresetPublicChat})
	if err != nil {
		t.Fatal(err)
	}
	membership(t, n, bob, roomID, bob.UserID, "join")
	la, lb, lc := n.Listen(alice.UserID), n.Listen(bob.UserID), n.Listen(carol.UserID)
	defer la.Close()
	defer lb.Close()
	defer lc.Close()
	if _, err := n.UploadKeys(ctx, alice.UserID, "A1", deviceKeysFor(t, newTestKey(t), alice.UserID, "A1"), nil, nil); err != nil {
		t.Fatal(err)
	}
	if !wakes(lb, 30*time.Second) {
		t.Fatal("bob, alice's room-mate, was not woken")
	}
	if !wakes(la, 30*time.Second) {
		t.Fatal("alice was not woken by her own change")
	}
	if wakes(lc, 50*time.Millisecond) {
		t.Fatal("carol, a stranger, was woken")
	}
}
