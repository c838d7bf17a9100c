package testnet

import (
	"context"
	"net/http"
	"testing"

	"github.com/edgenode/edgenode/node"
)

// Peer is one running node as a multi-node test sees it: the node inside
// (for set-up and checks beside the API) and its client API's base URL.
// Federation between peers is whatever the caller started.
type Peer struct {
	Node *node.Node
	URL  string
}

// JoinVia joins user of p to roomID through p's client API, with server
// (a node in the room) as the server to join through, and returns the
// join's event ID on p. The join must answer 200 with the room ID and leave
// user joined on p, or the test fails.
func JoinVia(ctx context.Context, tb testing.TB, p Peer, user node.Session, roomID, server string) string {
	tb.Helper()
	status, body := Join(tb, p.URL, user.AccessToken, roomID, server)
	if status != http.StatusOK || body["room_id"] != roomID {
		tb.Fatalf("join on %s: %d %v", p.Node.ServerName(), status, body)
	}
	mi, err := p.Node.Membership(ctx, roomID, user.UserID)
	if err != nil || mi.Membership != "join" {
		tb.Fatalf("membership on %s: %+v, %v", p.Node.ServerName(), mi, err)
	}
	return mi.EventID
}

// Shared is a public room on one node with a user of a second node joined.
type Shared struct {
	// Alice created the room on the first node; Bob joined from the second.
	Alice, Bob node.Session
	RoomID     string
}

// ShareRoom registers alice on a and bob on b, creates a public room on a,
// joins bob through b's client API (so over federation to a) and waits
// until a has bob's join, so a sends the room's events on to b.
func ShareRoom(ctx context.Context, tb testing.TB, a, b Peer) Shared {
	tb.Helper()
	alice := Register(ctx, tb, a.Node, "alice")
	bob := Register(ctx, tb, b.Node, "bob")
	roomID := PublicRoom(ctx, tb, a.Node, alice.UserID)
	join := JoinVia(ctx, tb, b, bob, roomID, a.Node.ServerName())
	WaitForEvent(ctx, tb, a.Node, alice.UserID, roomID, join)
	return Shared{Alice: alice, Bob: bob, RoomID: roomID}
}
