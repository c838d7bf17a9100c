package app

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/edgenode/edgenode/kv"
	"github.com/edgenode/edgenode/node/core"
	"github.com/matrix-org/gomatrixserverlib"
)

// TestHostileUserDirectoryProfile: a rogue member of alice's public room
// gives itself a member event with a display name of thousands of words
// and an avatar that is no mxc:// URI. alice still finds it by its first
// words, with the name cut and no avatar; it owns a bounded number of
// index keys, and a word far into the name finds nothing.
func TestHostileUserDirectoryProfile(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rr := startRogueRoom(ctx, t, core.PresetPublicChat)
	r, rs := rr.r, rr.rs
	m := r.userID("m")
	var name strings.Builder
	name.WriteString("Mallory Rogue")
	for i := 0; name.Len() < 40<<10; i++ {
		name.WriteString(" word")
		name.WriteString(strings.Repeat("x", i%7))
	}
	name.WriteString(" farword")
	content, err := json.Marshal(map[string]any{"membership": "join", "displayname": name.String(), "avatar_url": "https://evil.example/track.png"})
	if err != nil {
		t.Fatal(err)
	}
	ev := r.sign(rs.version, r.event(rs, "m", "m.room.member", &m, string(content)))
	rs.last = ev
	r.serve(ev)
	if res := r.send(ctx, []gomatrixserverlib.PDU{ev}, nil); res[ev.EventID()] != "" {
		t.Fatalf("member event refused: %v", res)
	}

	body := mustCall(t, rr.a, "POST", "/_matrix/client/v3/user_directory/search", rr.alice.AccessToken, map[string]any{"search_term": "mallory rog"})
	results, _ := body["results"].([]any)
	if len(results) != 1 {
		t.Fatalf("search for mallory: %v", body)
	}
	got, _ := results[0].(map[string]any)
	dn, _ := got["display_name"].(string)
	if got["user_id"] != m || !strings.HasPrefix(dn, "Mallory Rogue word") || len(dn) > 512 {
		t.Errorf("result %q (%d bytes of display name), want %s with the name cut to at most 512 bytes", got["user_id"], len(dn), m)
	}
	if _, ok := got["avatar_url"]; ok {
		t.Errorf("avatar_url served: %v", got["avatar_url"])
	}
	body = mustCall(t, rr.a, "POST", "/_matrix/client/v3/user_directory/search", rr.alice.AccessToken, map[string]any{"search_term": "farword"})
	if results, _ := body["results"].([]any); len(results) != 0 {
		t.Errorf("a word past the token bound found the rogue: %v", body)
	}

	// Its index keys: one per token of its user ID and name, bounded.
	keys := 0
	err = rr.a.node.DB.View(func(tx *kv.Txn) error {
		return tx.Each(kv.Scan{Prefix: kv.Key("udtoken"), KeysOnly: true}, func(k, _ []byte) (bool, error) {
			if bytes.Contains(k, []byte(m)) {
				keys++
			}
			return true, nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	if keys == 0 || keys > 16 {
		t.Errorf("the rogue has %d token keys, want 1 to 16", keys)
	}
}
