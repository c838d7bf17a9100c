package userdir

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/edgenode/edgenode/node/core"
	"github.com/matrix-org/gomatrixserverlib"
)

// TestSearchBusy: beyond maxSearches at once, a search is refused with
// ErrBusy (429 at the HTTP edge), and served again once one ends.
func TestSearchBusy(t *testing.T) {
	ctx := context.Background()
	c, err := core.Open(ctx, core.Config{DataDir: t.TempDir(), StorageProfile: "phone", NoSyncWrites: true, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	d := New(c)
	for range maxSearches {
		d.searching <- struct{}{} // searches in flight
	}
	if _, err := d.SearchUserDirectory(ctx, "@a:hs", "bob", 10); !errors.Is(err, ErrBusy) {
		t.Fatalf("search with %d running: %v, want ErrBusy", maxSearches, err)
	}
	<-d.searching
	if _, err := d.SearchUserDirectory(ctx, "@a:hs", "bob", 10); err != nil {
		t.Fatalf("search with one slot free: %v", err)
	}
}

// TestProfileOf: what a member record keeps of a member event.
func TestProfileOf(t *testing.T) {
	long := strings.Repeat("n", 2000)
	cases := []struct {
		name    string
		content map[string]any
		want    memberRecord
	}{
		{"both", map[string]any{"displayname": "Alice", "avatar_url": "mxc://hs/a"}, memberRecord{"Alice", "mxc://hs/a"}},
		{"none", map[string]any{}, memberRecord{}},
		{"not strings", map[string]any{"displayname": 5, "avatar_url": []any{"mxc://hs/a"}}, memberRecord{}},
		{"avatar not mxc", map[string]any{"avatar_url": "https://evil.example/a.png"}, memberRecord{}},
		{"avatar too long", map[string]any{"avatar_url": "mxc://hs/" + long}, memberRecord{}},
		{"name cut", map[string]any{"displayname": long}, memberRecord{DisplayName: long[:maxStoredName]}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.content["membership"] = "join"
			raw, _ := json.Marshal(map[string]any{
				"type": "m.room.member", "state_key": "@a:hs", "sender": "@a:hs", "room_id": "!r:hs",
				"content": tc.content, "origin_server_ts": 1, "depth": 1, "prev_events": []string{}, "auth_events": []string{},
			})
			ev, err := gomatrixserverlib.MustGetRoomVersion(gomatrixserverlib.RoomVersionV10).NewEventFromTrustedJSON(raw, false)
			if err != nil {
				t.Fatal(err)
			}
			if got := *profileOf(ev); got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}
