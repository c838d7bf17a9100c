package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/edgenode/edgenode/federation"
	"github.com/edgenode/edgenode/node"
	"github.com/edgenode/edgenode/p2ptransport"
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
	a, err := Start(context.Background(), Config{
		ClientListen: "127.0.0.1:0",
		Node: node.Config{
			DataDir: dir, StorageProfile: "phone", NoSyncWrites: true,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		},
		P2P: &P2PConfig{Config: p2ptransport.Config{ListenAddrs: []string{"/ip4/127.0.0.1/udp/0/quic-v1"}, StaticPeers: peers}},
	})
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	return a
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
	var rd *bytes.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, err := http.NewRequest(method, app.BaseURL()+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("%s %s: %d, body not JSON: %v", method, path, resp.StatusCode, err)
	}
	return resp.StatusCode, out
}

// mustCall is call that fails the test on a status other than 200.
func mustCall(t *testing.T, app *App, method, path, token string, body any) map[string]any {
	t.Helper()
	status, out := call(t, app, method, path, token, body)
	if status != http.StatusOK {
		t.Fatalf("%s %s: %d %v", method, path, status, out)
	}
	return out
}

// TestFederationOverLibp2p runs the whole chain: B signs a federation
// request, it travels over a real libp2p QUIC connection, A's handler checks
// the X-Matrix signature against the key in B's server name and that B is
// the authenticated peer, and answers from A's node.
func TestFederationOverLibp2p(t *testing.T) {
	a := startP2P(t, nil)
	var quic []string
	for _, addr := range a.p2p.Addrs() {
		if strings.Contains(addr, "/quic-v1/") {
			quic = append(quic, addr)
		}
	}
	b := startP2P(t, quic)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	alice, err := a.node.Register(ctx, node.RegisterRequest{Localpart: "alice", Admin: true, InhibitLogin: true})
	if err != nil {
		t.Fatal(err)
	}
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
	var quic []string
	for _, addr := range a.p2p.Addrs() {
		if strings.Contains(addr, "/quic-v1/") {
			quic = append(quic, addr)
		}
	}
	return a, startP2P(t, quic)
}

// clientJoin joins through B's client API: POST /join/{roomId}?server_name=.
func clientJoin(t *testing.T, app *App, token, roomID, serverName string) (int, map[string]any) {
	t.Helper()
	u := app.BaseURL() + "/_matrix/client/v3/join/" + url.PathEscape(roomID) + "?server_name=" + url.QueryEscape(serverName)
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("join response: %v", err)
	}
	return resp.StatusCode, body
}

// waitForEvent waits (bounded by ctx) until userID on app's node sees
// eventID in the room's timeline.
func waitForEvent(ctx context.Context, t *testing.T, app *App, userID, roomID, eventID string) {
	t.Helper()
	l := app.node.Listen(userID)
	defer l.Close()
	for {
		page, err := app.node.RoomEvents(ctx, userID, roomID, node.Range{Backwards: true, Limit: 50})
		if err != nil && !errors.Is(err, node.ErrNotFound) {
			t.Fatalf("room events: %v", err)
		}
		for _, ev := range page.Events {
			if ev.PDU.EventID() == eventID {
				return
			}
		}
		if !l.Wait(ctx) {
			t.Fatalf("event %s did not arrive at %s: %v", eventID, app.node.ServerName(), ctx.Err())
		}
	}
}

// TestJoinOverFederation: B's user joins A's public room by room ID through
// B's client API (make_join and send_join over libp2p), B then has the room
// with A's state, and messages flow both ways through the outbound queues
// and /send.
func TestJoinOverFederation(t *testing.T) {
	a, b := startPair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	alice, err := a.node.Register(ctx, node.RegisterRequest{Localpart: "alice", Admin: true, InhibitLogin: true})
	if err != nil {
		t.Fatal(err)
	}
	bob, err := b.node.Register(ctx, node.RegisterRequest{Localpart: "bob", Admin: true})
	if err != nil {
		t.Fatal(err)
	}
	name := "Lobby"
	roomID, err := a.node.CreateRoom(ctx, node.CreateRoomRequest{Creator: alice.UserID, Preset: node.PresetPublicChat, Name: &name})
	if err != nil {
		t.Fatal(err)
	}

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
	page, err := b.node.RoomEvents(ctx, bob.UserID, roomID, node.Range{Backwards: true, Limit: 50})
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

	fromAlice, err := a.node.SendEvent(ctx, node.SendRequest{
		Sender: alice.UserID, RoomID: roomID, Type: "m.room.message", Content: json.RawMessage(`{"msgtype":"m.text","body":"hi bob"}`),
	})
	if err != nil {
		t.Fatal(err)
	}
	waitForEvent(ctx, t, b, bob.UserID, roomID, fromAlice)

	fromBob, err := b.node.SendEvent(ctx, node.SendRequest{
		Sender: bob.UserID, DeviceID: bob.DeviceID, RoomID: roomID, Type: "m.room.message", Content: json.RawMessage(`{"msgtype":"m.text","body":"hi alice"}`),
	})
	if err != nil {
		t.Fatal(err)
	}
	waitForEvent(ctx, t, a, alice.UserID, roomID, fromBob)
}

// TestJoinOverFederationRefused: a room that is not public (no invite) is
// 403 M_FORBIDDEN to B's client, and a room A does not have is 404.
func TestJoinOverFederationRefused(t *testing.T) {
	a, b := startPair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	alice, err := a.node.Register(ctx, node.RegisterRequest{Localpart: "alice", Admin: true, InhibitLogin: true})
	if err != nil {
		t.Fatal(err)
	}
	bob, err := b.node.Register(ctx, node.RegisterRequest{Localpart: "bob", Admin: true})
	if err != nil {
		t.Fatal(err)
	}
	roomID, err := a.node.CreateRoom(ctx, node.CreateRoomRequest{Creator: alice.UserID, Preset: node.PresetPrivateChat})
	if err != nil {
		t.Fatal(err)
	}
	status, body := clientJoin(t, b, bob.AccessToken, roomID, a.node.ServerName())
	if status != http.StatusForbidden || body["errcode"] != "M_FORBIDDEN" {
		t.Fatalf("join of a private room: %d %v, want 403 M_FORBIDDEN", status, body)
	}
	if _, err := b.node.Membership(ctx, roomID, bob.UserID); !errors.Is(err, node.ErrNotFound) {
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
	req, err := http.NewRequest(http.MethodGet, app.BaseURL()+"/_matrix/client/v3/sync", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
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
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("sync: %d %v", resp.StatusCode, err)
	}
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
func quicAddrs(app *App) []string {
	var quic []string
	for _, addr := range app.p2p.Addrs() {
		if strings.Contains(addr, "/quic-v1/") {
			quic = append(quic, addr)
		}
	}
	return quic
}

// timelineSince is the IDs of the room's timeline events on app (as userID
// sees them) from eventID (included) to the newest, and whether eventID was
// found.
func timelineSince(ctx context.Context, t *testing.T, app *App, userID, roomID, eventID string) ([]string, bool) {
	t.Helper()
	page, err := app.node.RoomEvents(ctx, userID, roomID, node.Range{Backwards: true, Limit: 100})
	if err != nil && !errors.Is(err, node.ErrNotFound) {
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
		u, err := apps[i].node.Register(ctx, node.RegisterRequest{Localpart: name, Admin: true})
		if err != nil {
			t.Fatal(err)
		}
		users = append(users, u)
	}
	roomID, err := a.node.CreateRoom(ctx, node.CreateRoomRequest{Creator: users[0].UserID, Preset: node.PresetPublicChat})
	if err != nil {
		t.Fatal(err)
	}
	var joins []string
	for i := 1; i < 3; i++ {
		status, body := clientJoin(t, apps[i], users[i].AccessToken, roomID, a.node.ServerName())
		if status != http.StatusOK || body["room_id"] != roomID {
			t.Fatalf("join on %s: %d %v", apps[i].node.ServerName(), status, body)
		}
		mi, err := apps[i].node.Membership(ctx, roomID, users[i].UserID)
		if err != nil || mi.Membership != "join" {
			t.Fatalf("membership on %s: %+v, %v", apps[i].node.ServerName(), mi, err)
		}
		joins = append(joins, mi.EventID)
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
				id, err := apps[i].node.SendEvent(ctx, node.SendRequest{
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
	evs, err := c.federation.GetMissingEvents(ctx, a.node.ServerName(), roomID, node.MissingEventsRequest{
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
	filter := url.QueryEscape(`{"room":{"timeline":{"limit":50}}}`)
	req, err := http.NewRequest(http.MethodGet, app.BaseURL()+"/_matrix/client/v3/sync?filter="+filter, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
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
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("sync: %d %v", resp.StatusCode, err)
	}
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
	alice, err := a.node.Register(ctx, node.RegisterRequest{Localpart: "alice", Admin: true})
	if err != nil {
		t.Fatal(err)
	}
	bob, err := b.node.Register(ctx, node.RegisterRequest{Localpart: "bob", Admin: true})
	if err != nil {
		t.Fatal(err)
	}
	roomID, err := a.node.CreateRoom(ctx, node.CreateRoomRequest{Creator: alice.UserID, Preset: node.PresetPublicChat})
	if err != nil {
		t.Fatal(err)
	}
	status, body := clientJoin(t, b, bob.AccessToken, roomID, a.node.ServerName())
	if status != http.StatusOK {
		t.Fatalf("join: %d %v", status, body)
	}
	// A knows B is in the room once bob's join is in A's timeline.
	mi, err := b.node.Membership(ctx, roomID, bob.UserID)
	if err != nil {
		t.Fatal(err)
	}
	waitForEvent(ctx, t, a, alice.UserID, roomID, mi.EventID)
	return roomPair{a: a, b: b, alice: alice, bob: bob, roomID: roomID}
}
