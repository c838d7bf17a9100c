package app

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/edgenode/edgenode/federation"
	"github.com/edgenode/edgenode/internal/identity"
	"github.com/edgenode/edgenode/internal/testnet"
	"github.com/matrix-org/gomatrixserverlib"
)

// get walks a decoded JSON object along keys.
func get(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

// connected returns once from has a libp2p connection to to: it sends one
// federation request (any answer will do), which waits for the dial.
func connected(ctx context.Context, t *testing.T, from, to *App) {
	t.Helper()
	_, err := from.federation.QueryProfile(ctx, to.node.ServerName(), to.node.UserID("nobody"), "")
	var re *federation.RemoteError
	if !errors.As(err, &re) {
		t.Fatalf("%s cannot reach %s: %v", from.node.ServerName(), to.node.ServerName(), err)
	}
}

// TestKeysAcrossServers: A's user asks its own server for the keys of B's
// user; A asks B over libp2p. The device keys arrive as B's user signed
// them, one-time keys are claimed once each, and a server nobody can reach
// is listed in failures while the rest of the answer still comes.
func TestKeysAcrossServers(t *testing.T) {
	a, b := startPair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	alice := testnet.Register(ctx, t, a.node, "alice")
	bob := testnet.Register(ctx, t, b.node, "bob")

	// Bob's device publishes signed identity keys and two one-time keys.
	devKeys, pub := testnet.SignedDeviceKeys(t, bob.UserID, bob.DeviceID, "Y3VydmU",
		[]string{"m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"}, nil)
	status, body := call(t, b, "POST", "/_matrix/client/v3/keys/upload", bob.AccessToken, map[string]any{
		"device_keys": json.RawMessage(devKeys),
		"one_time_keys": map[string]any{
			"signed_curve25519:AAAAAQ": map[string]any{"key": "b3RrMQ"},
			"signed_curve25519:AAAAAg": map[string]any{"key": "b3RrMg"},
		},
	})
	if status != http.StatusOK {
		t.Fatalf("bob's upload: %d %v", status, body)
	}

	// A reaches B over the connection B opened to A (B dials A at start,
	// in the background: one request from B waits for it).
	connected(ctx, t, b, a)

	// Alice's query: bob's keys from B, a server nobody runs in failures.
	_, nowhereKey, _ := ed25519.GenerateKey(rand.Reader)
	nowhere := identity.ServerNameForKey(nowhereKey.Public().(ed25519.PublicKey))
	status, body = call(t, a, "POST", "/_matrix/client/v3/keys/query", alice.AccessToken, map[string]any{
		"device_keys": map[string]any{bob.UserID: []string{}, "@ghost:" + nowhere: []string{}},
		"timeout":     5000,
	})
	if status != http.StatusOK {
		t.Fatalf("keys/query: %d %v", status, body)
	}
	got, _ := json.Marshal(get(body, "device_keys", bob.UserID, bob.DeviceID))
	if err := gomatrixserverlib.VerifyJSON(bob.UserID, gomatrixserverlib.KeyID("ed25519:"+bob.DeviceID), pub, got); err != nil {
		t.Fatalf("bob's device keys through A do not verify (%v): %s", err, got)
	}
	if get(body, "failures", nowhere) == nil || get(body, "failures", b.node.ServerName()) != nil {
		t.Fatalf("failures %v: want %s only", get(body, "failures"), nowhere)
	}
	if get(body, "failures", nowhere, "errcode") == nil {
		t.Fatalf("failure of %s is not an error object: %v", nowhere, get(body, "failures", nowhere))
	}

	// Claims: one key each time, never the same one, then none.
	claim := map[string]any{"one_time_keys": map[string]any{bob.UserID: map[string]string{bob.DeviceID: "signed_curve25519"}}}
	seen := map[string]bool{}
	for i := range 3 {
		status, body = call(t, a, "POST", "/_matrix/client/v3/keys/claim", alice.AccessToken, claim)
		if status != http.StatusOK {
			t.Fatalf("claim %d: %d %v", i, status, body)
		}
		keys, _ := get(body, "one_time_keys", bob.UserID, bob.DeviceID).(map[string]any)
		if i == 2 {
			if len(keys) != 0 {
				t.Fatalf("third claim got %v, want nothing (both keys used)", keys)
			}
			break
		}
		if len(keys) != 1 {
			t.Fatalf("claim %d: %v", i, body)
		}
		for id := range keys {
			if seen[id] {
				t.Fatalf("key %s claimed twice", id)
			}
			seen[id] = true
		}
	}
	if f, _ := body["failures"].(map[string]any); len(f) != 0 {
		t.Fatalf("claim failures: %v", f)
	}
}

// TestAliasAndProfileAcrossServers: B's user resolves an alias of A's
// through B's client API, joins by it, and reads A's user's profile.
func TestAliasAndProfileAcrossServers(t *testing.T) {
	a, b := startPair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	alice := testnet.Register(ctx, t, a.node, "alice")
	bob := testnet.Register(ctx, t, b.node, "bob")
	status, body := call(t, a, "POST", "/_matrix/client/v3/createRoom", alice.AccessToken, map[string]any{
		"preset": "public_chat", "room_alias_name": "room",
	})
	if status != http.StatusOK {
		t.Fatalf("createRoom: %d %v", status, body)
	}
	roomID, _ := body["room_id"].(string)
	alias := "#room:" + a.node.ServerName()

	status, body = call(t, b, "GET", "/_matrix/client/v3/directory/room/"+url.PathEscape(alias), bob.AccessToken, nil)
	servers, _ := body["servers"].([]any)
	if status != http.StatusOK || body["room_id"] != roomID || len(servers) == 0 || servers[0] != a.node.ServerName() {
		t.Fatalf("B resolves %s: %d %v; want %s through %s", alias, status, body, roomID, a.node.ServerName())
	}
	status, body = call(t, b, "GET", "/_matrix/client/v3/directory/room/"+url.PathEscape("#nope:"+a.node.ServerName()), bob.AccessToken, nil)
	if status != http.StatusNotFound || body["errcode"] != "M_NOT_FOUND" {
		t.Fatalf("B resolves an alias A does not have: %d %v", status, body)
	}

	status, body = call(t, b, "POST", "/_matrix/client/v3/join/"+url.PathEscape(alias), bob.AccessToken, map[string]any{})
	if status != http.StatusOK || body["room_id"] != roomID {
		t.Fatalf("B joins by %s: %d %v", alias, status, body)
	}
	if mi, err := b.node.Membership(ctx, roomID, bob.UserID); err != nil || mi.Membership != "join" {
		t.Fatalf("bob's membership on B: %+v, %v", mi, err)
	}

	status, body = call(t, b, "GET", "/_matrix/client/v3/profile/"+url.PathEscape(alice.UserID), bob.AccessToken, nil)
	if status != http.StatusOK || body["displayname"] != "alice" {
		t.Fatalf("B reads alice's profile: %d %v", status, body)
	}
	status, body = call(t, b, "GET", "/_matrix/client/v3/profile/"+url.PathEscape(alice.UserID)+"/displayname", bob.AccessToken, nil)
	if status != http.StatusOK || body["displayname"] != "alice" {
		t.Fatalf("B reads alice's displayname: %d %v", status, body)
	}
	status, body = call(t, b, "GET", "/_matrix/client/v3/profile/"+url.PathEscape(a.node.UserID("nobody")), bob.AccessToken, nil)
	if status != http.StatusNotFound || body["errcode"] != "M_NOT_FOUND" {
		t.Fatalf("B reads the profile of a user A does not have: %d %v", status, body)
	}
}
