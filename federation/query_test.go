package federation

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"testing"

	"github.com/edgenode/edgenode/internal/testnet"
	"github.com/edgenode/edgenode/node"
	"github.com/edgenode/edgenode/node/core"
)

// keyedUser is a user of A with a device that uploaded signed device keys
// (with a field the library's structs do not know, which must survive) and
// two one-time keys.
type keyedUser struct {
	userID, deviceID string
	deviceKeys       json.RawMessage
}

func newKeyedUser(t *testing.T, n *node.Node, localpart string) keyedUser {
	t.Helper()
	ctx := context.Background()
	s := testnet.RegisterWith(ctx, t, n, node.RegisterRequest{Localpart: localpart, Admin: true, DeviceDisplayName: "phone"})
	signed, _ := testnet.SignedDeviceKeys(t, s.UserID, s.DeviceID, "curve",
		[]string{"m.olm.v1.curve25519-aes-sha2"}, map[string]any{"org.example.extra": "signed too"})
	otks := map[string]json.RawMessage{
		"signed_curve25519:AAAA": json.RawMessage(`{"key":"otk1"}`),
		"signed_curve25519:AAAB": json.RawMessage(`{"key":"otk2"}`),
	}
	if _, err := n.UploadKeys(ctx, s.UserID, s.DeviceID, signed, otks, nil); err != nil {
		t.Fatal(err)
	}
	return keyedUser{userID: s.UserID, deviceID: s.DeviceID, deviceKeys: signed}
}

// rawBody replaces a signed request's body (after signing: the handler
// checks the body is JSON before it checks the signature).
func rawBody(req *http.Request, body string) *http.Request {
	req.Body = io.NopCloser(bytes.NewReader([]byte(body)))
	req.ContentLength = int64(len(body))
	return req
}

func TestQueryDirectory(t *testing.T) {
	p := newPair(t)
	c := p.clientB()
	ctx := context.Background()
	roomID := testnet.CreateRoom(ctx, t, p.a.n, core.CreateRoomRequest{Creator: p.alice, Preset: core.PresetPublicChat, RoomAliasName: "lobby"})
	alias := "#lobby:" + p.a.name()

	ra, err := c.QueryDirectory(ctx, p.a.name(), alias)
	if err != nil || ra.RoomID != roomID || len(ra.Servers) == 0 || ra.Servers[0] != p.a.name() {
		t.Fatalf("QueryDirectory(%s) = %+v, %v; want %s with A first", alias, ra, err, roomID)
	}

	dir := func(alias string) string {
		return "/_matrix/federation/v1/query/directory?room_alias=" + url.QueryEscape(alias)
	}
	bKey := p.b.n.SigningKey()
	for _, unknown := range []string{"#nope:" + p.a.name(), "#lobby:" + p.b.name(), "lobby", "#x:" + p.b.name() + ":" + p.a.name()} {
		req := signed(t, p.a, p.b.name(), p.a.name(), bKey, "GET", dir(unknown), nil)
		expect(t, "alias "+unknown, do(t, req), http.StatusNotFound, "M_NOT_FOUND")
	}
	req := signed(t, p.a, p.b.name(), p.a.name(), bKey, "GET", "/_matrix/federation/v1/query/directory", nil)
	expect(t, "no room_alias", do(t, req), http.StatusBadRequest, "M_MISSING_PARAM")

	// The client side maps the remote 404 to the node's not-found.
	if _, err := c.QueryDirectory(ctx, p.a.name(), "#nope:"+p.a.name()); !errors.Is(err, core.ErrNotFound) {
		t.Fatalf("QueryDirectory(unknown) error = %v, want ErrNotFound", err)
	}
}

func TestUserDevices(t *testing.T) {
	p := newPair(t)
	c := p.clientB()
	ctx := context.Background()
	carol := newKeyedUser(t, p.a.n, "carol")

	ud, err := c.GetUserDevices(ctx, p.a.name(), carol.userID)
	if err != nil {
		t.Fatalf("GetUserDevices: %v", err)
	}
	if ud.UserID != carol.userID || ud.StreamID == 0 || len(ud.Devices) != 1 {
		t.Fatalf("devices of carol: %+v", ud)
	}
	d := ud.Devices[0]
	var keys map[string]any
	if err := json.Unmarshal(d.Keys, &keys); err != nil {
		t.Fatal(err)
	}
	if d.DeviceID != carol.deviceID || d.DisplayName != "phone" || keys["org.example.extra"] != "signed too" || keys["signatures"] == nil {
		t.Fatalf("carol's device: %+v", d)
	}

	bKey := p.b.n.SigningKey()
	devicesURI := func(u string) string { return "/_matrix/federation/v1/user/devices/" + url.PathEscape(u) }
	req := signed(t, p.a, p.b.name(), p.a.name(), bKey, "GET", devicesURI(p.a.n.UserID("nobody")), nil)
	expect(t, "unknown user", do(t, req), http.StatusNotFound, "M_NOT_FOUND")
	req = signed(t, p.a, p.b.name(), p.a.name(), bKey, "GET", devicesURI(p.b.n.UserID("bob")), nil)
	expect(t, "user of another server", do(t, req), http.StatusBadRequest, "M_INVALID_PARAM")
	// A user with no device keys has an empty list, not an error.
	req = signed(t, p.a, p.b.name(), p.a.name(), bKey, "GET", devicesURI(p.alice), nil)
	r := do(t, req)
	if devs, ok := r.body["devices"].([]any); r.status != http.StatusOK || !ok || len(devs) != 0 {
		t.Fatalf("alice's devices: %d %v", r.status, r.body)
	}
}

func TestQueryAndClaimKeys(t *testing.T) {
	p := newPair(t)
	c := p.clientB()
	ctx := context.Background()
	carol := newKeyedUser(t, p.a.n, "carol")
	other := "@someone:" + p.b.name()

	rk, err := c.QueryKeys(ctx, p.a.name(), map[string][]string{carol.userID: nil, other: nil, "@x:elsewhere.example": {}})
	if err != nil {
		t.Fatalf("QueryKeys: %v", err)
	}
	if len(rk.DeviceKeys) != 1 {
		t.Fatalf("device_keys users: %v, want carol only", rk.DeviceKeys)
	}
	got := rk.DeviceKeys[carol.userID][carol.deviceID]
	var gotObj, wantObj map[string]any
	_ = json.Unmarshal(got, &gotObj)
	_ = json.Unmarshal(carol.deviceKeys, &wantObj)
	delete(gotObj, "unsigned") // added by the server, outside the signature
	if g, w := mustJSON(t, gotObj), mustJSON(t, wantObj); g != w {
		t.Fatalf("carol's device keys:\n got %s\nwant %s", g, w)
	}

	claim := map[string]map[string]string{
		carol.userID: {carol.deviceID: "signed_curve25519"},
		other:        {"DEV": "signed_curve25519"},
	}
	first, err := c.ClaimKeys(ctx, p.a.name(), claim)
	if err != nil || len(first) != 1 || len(first[carol.userID][carol.deviceID]) != 1 {
		t.Fatalf("first claim: %v, %v", first, err)
	}
	second, err := c.ClaimKeys(ctx, p.a.name(), claim)
	if err != nil || len(second[carol.userID][carol.deviceID]) != 1 {
		t.Fatalf("second claim: %v, %v", second, err)
	}
	for id := range first[carol.userID][carol.deviceID] {
		if _, again := second[carol.userID][carol.deviceID][id]; again {
			t.Fatalf("key %s claimed twice", id)
		}
	}
	third, err := c.ClaimKeys(ctx, p.a.name(), claim)
	if err != nil || len(third) != 0 {
		t.Fatalf("third claim (keys used up, no fallback): %v, %v", third, err)
	}
}

func TestQueryKeysBadBodies(t *testing.T) {
	p := newPair(t)
	bKey := p.b.n.SigningKey()
	for _, path := range []string{"/_matrix/federation/v1/user/keys/query", "/_matrix/federation/v1/user/keys/claim"} {
		req := signed(t, p.a, p.b.name(), p.a.name(), bKey, "POST", path, map[string]any{})
		expect(t, path+" without its map", do(t, req), http.StatusBadRequest, "M_MISSING_PARAM")

		req = signed(t, p.a, p.b.name(), p.a.name(), bKey, "POST", path, map[string]any{"device_keys": 5, "one_time_keys": "x"})
		expect(t, path+" wrong types", do(t, req), http.StatusBadRequest, "M_BAD_JSON")

		req = rawBody(signed(t, p.a, p.b.name(), p.a.name(), bKey, "POST", path, map[string]any{}), "{not json")
		expect(t, path+" not JSON", do(t, req), http.StatusBadRequest, "M_NOT_JSON")
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
