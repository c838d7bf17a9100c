package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/edgenode/edgenode/federation"
	"github.com/edgenode/edgenode/internal/testnet"
	"github.com/edgenode/edgenode/node"
	"github.com/edgenode/edgenode/node/core"
	"github.com/edgenode/edgenode/node/inbound"
)

// startP2P starts an app with federation over libp2p QUIC on loopback, on a
// fresh data directory, closed when the test ends.
func startP2P(t *testing.T, peers []string) *App {
	t.Helper()
	a := startP2PAt(t, t.TempDir(), peers)
	t.Cleanup(func() { closeApp(t, a) })
	return a
}

// startP2PAt is startP2P with a given data directory, closed by the caller.
func startP2PAt(t *testing.T, dir string, peers []string) *App {
	t.Helper()
	a, err := Start(context.Background(), loopbackConfig(dir, peers))
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	return a
}

// loopbackConfig is the configuration of a test app on dir: the client API
// on 127.0.0.1, a node without fsync per write and libp2p QUIC on loopback
// with peers as static peers.
func loopbackConfig(dir string, peers []string) Config {
	return Config{
		ClientListen: "127.0.0.1:0",
		Node:         testnet.FastNodeConfig(dir),
		P2P:          &P2PConfig{Config: testnet.LoopbackP2P(peers)},
	}
}

func closeApp(t *testing.T, a *App) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := a.Close(ctx); err != nil {
		t.Errorf("close: %v", err)
	}
}

// call sends a client API request to app as the holder of token and returns
// the status and the decoded JSON body.
func call(t *testing.T, app *App, method, path, token string, body any) (int, map[string]any) {
	t.Helper()
	return testnet.Call(t, app.BaseURL(), method, path, token, body)
}

// mustCall is call that fails the test on a status other than 200.
func mustCall(t *testing.T, app *App, method, path, token string, body any) map[string]any {
	t.Helper()
	return testnet.MustCall(t, app.BaseURL(), method, path, token, body)
}

// peer is app as the shared multi-node helpers see it.
func peer(app *App) testnet.Peer { return testnet.Peer{Node: app.node, URL: app.BaseURL()} }

// TestFederationOverLibp2p runs the whole chain: B signs a federation
// request, it travels over a real libp2p QUIC connection, A's handler checks
// the X-Matrix signature against the key in B's server name and that B is
// the authenticated peer, and answers from A's node.
func TestFederationOverLibp2p(t *testing.T) {
	a, b := startPair(t)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	alice := testnet.RegisterWith(ctx, t, a.node, node.RegisterRequest{Localpart: "alice", Admin: true, InhibitLogin: true})
	p, err := b.federation.QueryProfile(ctx, a.node.ServerName(), alice.UserID, "")
	if err != nil {
		t.Fatalf("B queries A over libp2p: %v", err)
	}
	if p.DisplayName != "alice" {
		t.Fatalf("profile %+v, want displayname alice", p)
	}
	_, err = b.federation.QueryProfile(ctx, a.node.ServerName(), a.node.UserID("nobody"), "")
	var re *federation.RemoteError
	if !errors.As(err, &re) || re.Code != "M_NOT_FOUND" {
		t.Fatalf("profile of an unknown user: %v, want the remote's M_NOT_FOUND", err)
	}
}

// startPair starts A, and B dialling A over QUIC on loopback.
func startPair(t *testing.T) (a, b *App) {
	t.Helper()
	a = startP2P(t, nil)
	return a, startP2P(t, quicAddrs(a))
}

// clientJoin joins through B's client API: POST /join/{roomId}?server_name=.
func clientJoin(t *testing.T, app *App, token, roomID, serverName string) (int, map[string]any) {
	t.Helper()
	return testnet.Join(t, app.BaseURL(), token, roomID, serverName)
}

// waitForEvent waits (bounded by ctx) until userID on app's node sees
// eventID in the room's timeline.
func waitForEvent(ctx context.Context, t *testing.T, app *App, userID, roomID, eventID string) {
	t.Helper()
	testnet.WaitForEvent(ctx, t, app.node, userID, roomID, eventID)
}

// TestJoinOverFederation: B's user joins A's public room by room ID through
// B's client API (make_join and send_join over libp2p), B then has the room
// with A's state, and messages flow both ways through the outbound queues
// and /send.
func TestJoinOverFederation(t *testing.T) {
	a, b := startPair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	alice := testnet.RegisterWith(ctx, t, a.node, node.RegisterRequest{Localpart: "alice", Admin: true, InhibitLogin: true})
	bob := testnet.Register(ctx, t, b.node, "bob")
	name := "Lobby"
	roomID := testnet.CreateRoom(ctx, t, a.node, core.CreateRoomRequest{Creator: alice.UserID, Preset: core.PresetPublicChat, Name: &name})

	status, body := clientJoin(t, b, bob.AccessToken, roomID, a.node.ServerName())
	if status != http.StatusOK || body["room_id"] != roomID {
		t.Fatalf("join: %d %v", status, body)
	}
	mi, err := b.node.Membership(ctx, roomID, bob.UserID)
	if err != nil || mi.Membership != "join" {
		t.Fatalf("bob's membership on B: %+v, %v", mi, err)
	}
	ev, err := b.node.RoomStateEvent(ctx, bob.UserID, roomID, "m.room.name", "")
	if err != nil {
		t.Fatalf("room name on B: %v", err)
	}
	var nameContent struct{ Name string }
	if err := json.Unmarshal(ev.PDU.Content(), &nameContent); err != nil || nameContent.Name != name {
		t.Fatalf("room name on B: %s", ev.PDU.Content())
	}
	for _, u := range []string{alice.UserID, bob.UserID} {
		ev, err := b.node.RoomStateEvent(ctx, bob.UserID, roomID, "m.room.member", u)
		if err != nil {
			t.Fatalf("member %s on B: %v", u, err)
		}
		if m, _ := ev.PDU.Membership(); m != "join" {
			t.Fatalf("member %s on B: %s", u, m)
		}
	}
	// B's client sees the room through /sync, A's state included.
	if types := syncStateTypes(t, b, bob.AccessToken, roomID); !slices.Contains(types, "m.room.name") || !slices.Contains(types, "m.room.create") {
		t.Fatalf("B's /sync state for the room: %v", types)
	}
	// The join is B's first timeline event in the room.
	page, err := b.node.RoomEvents(ctx, bob.UserID, roomID, core.Range{Backwards: true, Limit: 50})
	if err != nil || len(page.Events) != 1 || page.Events[0].PDU.Type() != "m.room.member" {
		t.Fatalf("B's timeline: %d events, %v", len(page.Events), err)
	}
	servers, err := a.node.JoinedServers(ctx, roomID)
	if err != nil || !slices.Contains(servers, b.node.ServerName()) {
		t.Fatalf("A's joined servers %v (%v), want B's", servers, err)
	}
	mi, err = a.node.Membership(ctx, roomID, bob.UserID)
	if err != nil || mi.Membership != "join" {
		t.Fatalf("bob's membership on A: %+v, %v", mi, err)
	}

	fromAlice := testnet.SendText(ctx, t, a.node, alice.UserID, "", roomID, "hi bob")
	waitForEvent(ctx, t, b, bob.UserID, roomID, fromAlice)

	fromBob := testnet.SendText(ctx, t, b.node, bob.UserID, bob.DeviceID, roomID, "hi alice")
	waitForEvent(ctx, t, a, alice.UserID, roomID, fromBob)
}

// TestJoinOverFederationRefused: a room that is not public (no invite) is
// 403 M_FORBIDDEN to B's client, and a room A does not have is 404.
func TestJoinOverFederationRefused(t *testing.T) {
	a, b := startPair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	alice := testnet.RegisterWith(ctx, t, a.node, node.RegisterRequest{Localpart: "alice", Admin: true, InhibitLogin: true})
	bob := testnet.Register(ctx, t, b.node, "bob")
	roomID := testnet.CreateRoom(ctx, t, a.node, core.CreateRoomRequest{Creator: alice.UserID, Preset: core.PresetPrivateChat})
	status, body := clientJoin(t, b, bob.AccessToken, roomID, a.node.ServerName())
	if status != http.StatusForbidden || body["errcode"] != "M_FORBIDDEN" {
		t.Fatalf("join of a private room: %d %v, want 403 M_FORBIDDEN", status, body)
	}
	if _, err := b.node.Membership(ctx, roomID, bob.UserID); !errors.Is(err, core.ErrNotFound) {
		t.Fatalf("B has the room after a refused join: %v", err)
	}
	status, body = clientJoin(t, b, bob.AccessToken, "!nosuchroom:"+a.node.ServerName(), a.node.ServerName())
	if status != http.StatusNotFound || body["errcode"] != "M_NOT_FOUND" {
		t.Fatalf("join of an unknown room: %d %v, want 404 M_NOT_FOUND", status, body)
	}
}

// syncStateTypes is the event types of a joined room's state and timeline in
// an initial /sync on app.
func syncStateTypes(t *testing.T, app *App, token, roomID string) []string {
	t.Helper()
	type events struct {
		Events []struct{ Type string } `json:"events"`
	}
	var body struct {
		Rooms struct {
			Join map[string]struct {
				State    events `json:"state"`
				Timeline events `json:"timeline"`
			} `json:"join"`
		} `json:"rooms"`
	}
	testnet.Sync(context.Background(), t, app.BaseURL(), token, nil, &body)
	room, ok := body.Rooms.Join[roomID]
	if !ok {
		t.Fatalf("sync: room %s not joined", roomID)
	}
	var types []string
	for _, e := range append(room.State.Events, room.Timeline.Events...) {
		types = append(types, e.Type)
	}
	return types
}

// quicAddrs is app's QUIC listen multiaddrs.
func quicAddrs(app *App) []string { return testnet.QUICAddrs(app.p2p.Addrs()) }

// timelineSince is the IDs of the room's timeline events on app (as userID
// sees them) from eventID (included) to the newest, and whether eventID was
// found.
func timelineSince(ctx context.Context, t *testing.T, app *App, userID, roomID, eventID string) ([]string, bool) {
	t.Helper()
	page, err := app.node.RoomEvents(ctx, userID, roomID, core.Range{Backwards: true, Limit: 100})
	if err != nil && !errors.Is(err, core.ErrNotFound) {
		t.Fatalf("room events on %s: %v", app.node.ServerName(), err)
	}
	var ids []string
	for _, ev := range page.Events {
		ids = append(ids, ev.PDU.EventID())
		if ev.PDU.EventID() == eventID {
			return ids, true
		}
	}
	return ids, false
}

// TestThreeNodesConcurrentMessages: A creates a public room, B and C join
// it through A, then the three users send messages at the same time (the DAG
// forks and merges across three servers). Every node ends with the same
// events and the same current state, every user's /sync shows every
// message, and get_missing_events answers over libp2p. An event arriving
// before its prev events is fetched for with get_missing_events; that a
// gap actually happens here depends on timing (on loopback it usually does
// not), so the gap filling itself is tested deterministically by
// node.TestMissingEvents.
func TestThreeNodesConcurrentMessages(t *testing.T) {
	const perUser = 5
	a := startP2P(t, nil)
	b := startP2P(t, quicAddrs(a))
	c := startP2P(t, append(quicAddrs(a), quicAddrs(b)...))
	apps := []*App{a, b, c}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	var users []node.Session
	for i, name := range []string{"alice", "bob", "carol"} {
		users = append(users, testnet.Register(ctx, t, apps[i].node, name))
	}
	roomID := testnet.PublicRoom(ctx, t, a.node, users[0].UserID)
	var joins []string
	for i := 1; i < 3; i++ {
		joins = append(joins, testnet.JoinVia(ctx, t, peer(apps[i]), users[i], roomID, a.node.ServerName()))
	}
	// Everyone knows everyone is in before the messages start (else a server
	// would not send its events to a server it does not know is in). Bob's
	// join is in the state C got from send_join, carol's is on every
	// timeline.
	for i, app := range apps {
		waitForEvent(ctx, t, app, users[i].UserID, roomID, joins[1])
	}

	// Three senders at once.
	sent := make([][]string, len(apps))
	errs := make(chan error, len(apps))
	for i := range apps {
		go func() {
			for k := range perUser {
				id, err := apps[i].node.SendEvent(ctx, core.SendRequest{
					Sender: users[i].UserID, DeviceID: users[i].DeviceID, RoomID: roomID, Type: "m.room.message",
					Content: json.RawMessage(fmt.Sprintf(`{"msgtype":"m.text","body":"%s %d"}`, apps[i].node.ServerName()[:8], k)),
				})
				if err != nil {
					errs <- fmt.Errorf("send on %s: %w", apps[i].node.ServerName(), err)
					return
				}
				sent[i] = append(sent[i], id)
			}
			errs <- nil
		}()
	}
	for range apps {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	want := map[string]bool{joins[1]: true}
	for _, ids := range sent {
		for _, id := range ids {
			want[id] = true
		}
	}
	if len(want) != 3*perUser+1 {
		t.Fatalf("%d distinct events sent, want %d", len(want)-1, 3*perUser)
	}

	// Wait (bounded by ctx) until each node's timeline from carol's join on
	// is exactly the messages; woken by the node's listener, re-checked at
	// least every second.
	got := make([][]string, len(apps))
	for i, app := range apps {
		l := app.node.Listen(users[i].UserID)
		for {
			ids, _ := timelineSince(ctx, t, app, users[i].UserID, roomID, joins[1])
			if len(ids) >= len(want) {
				got[i] = ids
				break
			}
			wctx, wcancel := context.WithTimeout(ctx, time.Second)
			l.Wait(wctx)
			wcancel()
			if ctx.Err() != nil {
				l.Close()
				t.Fatalf("%s has %d of %d events after carol's join: %v", app.node.ServerName(), len(ids), len(want), ctx.Err())
			}
		}
		l.Close()
	}
	for i, ids := range got {
		slices.Sort(ids)
		if len(ids) != len(want) {
			t.Fatalf("%s: %d events from carol's join, want %d", apps[i].node.ServerName(), len(ids), len(want))
		}
		for _, id := range ids {
			if !want[id] {
				t.Fatalf("%s has unexpected event %s", apps[i].node.ServerName(), id)
			}
		}
	}

	// Same current state everywhere.
	var states [][]string
	for _, app := range apps {
		evs, err := app.node.CurrentState(ctx, roomID)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, ev := range evs {
			ids = append(ids, ev.PDU.EventID())
		}
		slices.Sort(ids)
		states = append(states, ids)
	}
	for i := 1; i < len(states); i++ {
		if !slices.Equal(states[0], states[i]) {
			t.Fatalf("current state differs:\n%s: %v\n%s: %v", a.node.ServerName(), states[0], apps[i].node.ServerName(), states[i])
		}
	}

	// get_missing_events over libp2p: C asks A for what precedes A's last
	// message, back to carol's join.
	evs, err := c.federation.GetMissingEvents(ctx, a.node.ServerName(), roomID, inbound.MissingEventsRequest{
		EarliestEvents: []string{joins[1]}, LatestEvents: []string{sent[0][perUser-1]}, Limit: 50,
	})
	if err != nil || len(evs) < perUser-1 {
		t.Fatalf("get_missing_events from A: %d events, %v; want at least %d", len(evs), err, perUser-1)
	}

	// Every user's /sync shows all the messages.
	for i, app := range apps {
		msgs := syncMessageIDs(t, app, users[i].AccessToken, roomID)
		for id := range want {
			if id != joins[1] && !slices.Contains(msgs, id) {
				t.Fatalf("%s's /sync on %s lacks %s (has %d messages)", users[i].UserID, app.node.ServerName(), id, len(msgs))
			}
		}
	}
}

// syncMessageIDs is the IDs of the m.room.message events in the room's
// timeline of an initial /sync on app (timeline limit 50).
func syncMessageIDs(t *testing.T, app *App, token, roomID string) []string {
	t.Helper()
	var body struct {
		Rooms struct {
			Join map[string]struct {
				Timeline struct {
					Events []struct {
						Type    string `json:"type"`
						EventID string `json:"event_id"`
					} `json:"events"`
				} `json:"timeline"`
			} `json:"join"`
		} `json:"rooms"`
	}
	testnet.Sync(context.Background(), t, app.BaseURL(), token, url.Values{"filter": {`{"room":{"timeline":{"limit":50}}}`}}, &body)
	var ids []string
	for _, e := range body.Rooms.Join[roomID].Timeline.Events {
		if e.Type == "m.room.message" {
			ids = append(ids, e.EventID)
		}
	}
	return ids
}

// roomPair is a public room on A with A's alice and B's bob joined.
type roomPair struct {
	a, b       *App
	alice, bob node.Session
	roomID     string
}

// sharedRoom registers alice on a and bob on b, creates a public room on a
// and joins bob through a, and waits until a knows bob joined.
func sharedRoom(ctx context.Context, t *testing.T, a, b *App) roomPair {
	t.Helper()
	r := testnet.ShareRoom(ctx, t, peer(a), peer(b))
	return roomPair{a: a, b: b, alice: r.Alice, bob: r.Bob, roomID: r.RoomID}
}
