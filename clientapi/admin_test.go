package clientapi_test

import (
	"context"
	"testing"

	"github.com/edgenode/edgenode/internal/testnode"
	"github.com/edgenode/edgenode/node"
)

// TestAdminSticky: GET /_matrix/client/v1/admin/edgenode/sticky is for
// administrators only (403 M_FORBIDDEN otherwise) and counts a room's live
// sticky events.
func TestAdminSticky(t *testing.T) {
	t.Parallel()
	n := testnode.Start(t, testnode.Options{})
	alice := n.Register("alice")
	root, err := n.App.Node.Register(context.Background(), node.RegisterRequest{Localpart: "root", Admin: true})
	if err != nil {
		t.Fatal(err)
	}
	room := createRoom(t, n, alice, map[string]any{"preset": "public_chat"})
	for _, txn := range []string{"s1", "s2"} {
		res := n.Do("PUT", v3+"/rooms/"+esc(room)+"/send/m.room.message/"+txn+"?sticky_duration_ms=600000", alice.Token,
			map[string]any{"msgtype": "m.text", "body": "hi"})
		expect(t, res, 200, "")
	}
	const path = "/_matrix/client/v1/admin/edgenode/sticky"
	expect(t, n.Do("GET", path, alice.Token, nil), 403, "M_FORBIDDEN")
	expect(t, n.Do("GET", path, "", nil), 401, "M_MISSING_TOKEN")
	res := n.Do("GET", path, root.AccessToken, nil)
	expect(t, res, 200, "")
	if got := field(res.Body, "rooms", room); got != float64(2) {
		t.Errorf("rooms[%s] = %v, want 2 (body %s)", room, got, res.Raw)
	}
	if got, ok := field(res.Body, "destinations").(map[string]any); !ok || len(got) != 0 {
		t.Errorf("destinations = %v, want {} (no other server)", field(res.Body, "destinations"))
	}
}
