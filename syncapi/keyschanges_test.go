package syncapi_test

import (
	"context"
	"encoding/json"
	"slices"
	"testing"

	"github.com/edgenode/edgenode/node/core"
)

func TestKeysChanges(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	alice, bob := e.user("alice"), e.user("bob")
	roomID := e.room(alice, core.PresetPublicChat)
	e.join(bob, roomID)
	t1 := e.sync(alice, nil).NextBatch

	keys, _ := json.Marshal(map[string]any{
		"user_id": bob.UserID, "device_id": bob.DeviceID, "algorithms": []string{"m.olm.v1.curve25519-aes-sha2"},
		"keys": map[string]string{"curve25519:" + bob.DeviceID: "abc", "ed25519:" + bob.DeviceID: "def"},
	})
	if _, err := e.n.UploadKeys(ctx, bob.UserID, bob.DeviceID, keys, nil, nil); err != nil {
		t.Fatal(err)
	}
	type body struct {
		Changed []string `json:"changed"`
		Left    []string `json:"left"`
	}
	check := func(from, to string, wantChanged, wantLeft []string) {
		t.Helper()
		res := e.get(alice.AccessToken, "/_matrix/client/v3/keys/changes", vals("from", from, "to", to))
		if res.Status != 200 {
			t.Fatalf("keys/changes: %d %s", res.Status, res.Raw)
		}
		var b body
		if err := json.Unmarshal(res.Raw, &b); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(b.Changed, wantChanged) || !slices.Equal(b.Left, wantLeft) {
			t.Errorf("keys/changes %s..%s: changed %v left %v, want %v %v", from, to, b.Changed, b.Left, wantChanged, wantLeft)
		}
	}
	tMid := e.sync(alice, vals("since", t1)).NextBatch
	// Asked while they share a room: bob's new keys.
	check(t1, tMid, []string{bob.UserID}, []string{})
	e.membership(alice, roomID, alice.UserID, "leave")
	t2 := e.sync(alice, vals("since", tMid)).NextBatch
	// Alice left their only shared room: bob is left, and no longer changed.
	check(tMid, t2, []string{}, []string{bob.UserID})
	check(t2, t2, []string{}, []string{})

	for _, q := range []struct{ from, to string }{{"", t2}, {t1, ""}, {"bogus", t2}} {
		res := e.get(alice.AccessToken, "/_matrix/client/v3/keys/changes", vals("from", q.from, "to", q.to))
		if res.Status != 400 {
			t.Errorf("keys/changes from=%q to=%q: %d, want 400", q.from, q.to, res.Status)
		}
	}
}

// TestSyncDeviceListsLeftWhenUserLeaves: when the syncing user leaves the
// only room they shared with someone, that someone is in device_lists.left,
// not in changed.
func TestSyncDeviceListsLeftWhenUserLeaves(t *testing.T) {
	e := newEnv(t)
	alice, bob, carol := e.user("alice"), e.user("bob"), e.user("carol")
	shared := e.room(alice, core.PresetPublicChat)
	e.join(bob, shared)
	e.join(carol, shared)
	other := e.room(alice, core.PresetPublicChat)
	e.join(carol, other) // carol still shares a room with alice afterwards
	since := e.sync(alice, nil).NextBatch
	e.membership(alice, shared, alice.UserID, "leave")
	b := e.sync(alice, vals("since", since))
	if !slices.Equal(b.DeviceLists.Left, []string{bob.UserID}) || slices.Contains(b.DeviceLists.Changed, bob.UserID) {
		t.Errorf("device_lists changed %v left %v, want bob (only) left", b.DeviceLists.Changed, b.DeviceLists.Left)
	}
}
