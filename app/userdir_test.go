package app

import (
	"context"
	"testing"
	"time"

	"github.com/edgenode/edgenode/internal/testnet"
	"github.com/edgenode/edgenode/node"
)

// searchNames searches app's user directory as token's user and returns
// user ID -> display name.
func searchNames(t *testing.T, app *App, token, term string) map[string]string {
	t.Helper()
	body := mustCall(t, app, "POST", "/_matrix/client/v3/user_directory/search", token, map[string]any{"search_term": term})
	out := map[string]string{}
	results, _ := body["results"].([]any)
	for _, r := range results {
		m, _ := r.(map[string]any)
		id, _ := m["user_id"].(string)
		name, _ := m["display_name"].(string)
		out[id] = name
	}
	return out
}

// TestUserDirectoryRemoteUsers: users of another node are found through the
// rooms this node shares with it: by bob who shares the room, by carol who
// shares nothing but the room is public; a new display name arrives with
// the member event; once the node's last user leaves, it no longer follows
// the room and its members are not found through it.
func TestUserDirectoryRemoteUsers(t *testing.T) {
	a, b := startPair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	alice := testnet.Register(ctx, t, a.node, "alice")
	bob := testnet.Register(ctx, t, b.node, "bob")
	carol := testnet.Register(ctx, t, b.node, "carol")
	name := "Alice Wonderland"
	if err := a.node.SetProfile(ctx, alice.UserID, alice.DeviceID, &name, nil); err != nil {
		t.Fatal(err)
	}
	roomID := testnet.PublicRoom(ctx, t, a.node, alice.UserID)
	join := testnet.JoinVia(ctx, t, peer(b), bob, roomID, a.node.ServerName())
	testnet.WaitForEvent(ctx, t, a.node, alice.UserID, roomID, join)

	// alice's member event came to B in the room's state with bob's join.
	for _, who := range []node.Session{bob, carol} {
		if got := searchNames(t, b, who.AccessToken, "wonder"); got[alice.UserID] != "Alice Wonderland" {
			t.Errorf("%s on B searching wonder: %v, want alice as Alice Wonderland", who.UserID, got)
		}
	}
	// And bob, remote to A, is found on A.
	if got := searchNames(t, a, alice.AccessToken, "bob"); got[bob.UserID] != "bob" {
		t.Errorf("alice on A searching bob: %v", got)
	}

	// A new name travels as a member event.
	name = "Queen of Hearts"
	if err := a.node.SetProfile(ctx, alice.UserID, alice.DeviceID, &name, nil); err != nil {
		t.Fatal(err)
	}
	ev, err := a.node.CurrentStateEvent(ctx, roomID, "m.room.member", alice.UserID)
	if err != nil {
		t.Fatal(err)
	}
	testnet.WaitForEvent(ctx, t, b.node, bob.UserID, roomID, ev.PDU.EventID())
	if got := searchNames(t, b, bob.AccessToken, "hearts"); got[alice.UserID] != "Queen of Hearts" {
		t.Errorf("bob searching hearts: %v", got)
	}
	if got := searchNames(t, b, bob.AccessToken, "wonder"); len(got) != 0 {
		t.Errorf("bob still finds alice by her old name: %v", got)
	}

	// bob leaves: B follows the room no more.
	mustCall(t, b, "POST", "/_matrix/client/v3/rooms/"+roomID+"/leave", bob.AccessToken, map[string]any{})
	for _, who := range []node.Session{bob, carol} {
		if got := searchNames(t, b, who.AccessToken, "hearts"); len(got) != 0 {
			t.Errorf("%s on B finds alice after B left the room: %v", who.UserID, got)
		}
	}
}
