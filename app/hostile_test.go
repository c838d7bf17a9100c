package app

// The hostile-peer suite: `make hostile` runs every TestHostile* test. Each
// attack comes from a rogue (hostile_peer_test.go), a real libp2p peer with
// a key of its own, against a real node through its real federation API.

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/edgenode/edgenode/internal/identity"
	"github.com/edgenode/edgenode/internal/testnet"
	"github.com/edgenode/edgenode/node"
	"github.com/edgenode/edgenode/node/core"
	"github.com/matrix-org/gomatrixserverlib"
)

// rogueRoom is a room on A with A's alice in it and, unless the room is
// private, a rogue's user "m" joined.
type rogueRoom struct {
	a      *App
	alice  node.Session
	roomID string
	r      *rogue
	rs     *roomState // nil when the rogue is not in the room
}

// startRogueRoom starts A and a rogue, creates a room with preset on A and,
// for a public room, joins the rogue's user "m" to it.
func startRogueRoom(ctx context.Context, t *testing.T, preset string) rogueRoom {
	t.Helper()
	return rogueRoomOn(ctx, t, startP2P(t, nil), preset)
}

// rogueRoomOn is startRogueRoom on a node already started.
func rogueRoomOn(ctx context.Context, t *testing.T, a *App, preset string) rogueRoom {
	t.Helper()
	alice := testnet.Register(ctx, t, a.node, "alice")
	roomID := testnet.CreateRoom(ctx, t, a.node, core.CreateRoomRequest{Creator: alice.UserID, Preset: preset})
	rr := rogueRoom{a: a, alice: alice, roomID: roomID, r: newRogue(t, a)}
	if preset == core.PresetPublicChat {
		rr.rs = rr.r.join(ctx, roomID, "m")
	}
	return rr
}

// say sends a message as alice and returns its event ID.
func (rr rogueRoom) say(ctx context.Context, t *testing.T, body string) string {
	t.Helper()
	id, err := rr.a.node.SendEvent(ctx, core.SendRequest{Sender: rr.alice.UserID, DeviceID: rr.alice.DeviceID, RoomID: rr.roomID,
		Type: "m.room.message", Content: json.RawMessage(fmt.Sprintf(`{"msgtype":"m.text","body":%q}`, body))})
	if err != nil {
		t.Fatalf("alice's send after the attack: %v", err)
	}
	return id
}

// honest sends one well-formed message of the rogue's user through /send,
// checks A accepted it and waits until it is in A's room: everything the
// rogue sent before it has been processed, so its absence is a result.
func (rr rogueRoom) honest(ctx context.Context, t *testing.T) {
	t.Helper()
	ev := rr.r.chain(rr.rs, "m", 1)[0]
	if res := rr.r.send(ctx, []gomatrixserverlib.PDU{ev}, nil); res[ev.EventID()] != "" {
		t.Fatalf("A refused the rogue's well-formed message: %q", res[ev.EventID()])
	}
	waitForEvent(ctx, t, rr.a, rr.alice.UserID, rr.roomID, ev.EventID())
}

// visible reports whether alice can fetch eventID through A's client API.
func (rr rogueRoom) visible(t *testing.T, eventID string) (bool, map[string]any) {
	t.Helper()
	status, body := call(t, rr.a, "GET", clientRoomPath(rr.roomID, "event/"+url.PathEscape(eventID)), rr.alice.AccessToken, nil)
	return status == http.StatusOK, body
}

// mustRefuse sends pdus, requires A to answer each with a per-PDU error,
// then proves them processed with an honest message and requires none of
// them to be visible at A.
func (rr rogueRoom) mustRefuse(ctx context.Context, t *testing.T, pdus ...gomatrixserverlib.PDU) {
	t.Helper()
	res := rr.r.send(ctx, pdus, nil)
	rr.honest(ctx, t)
	for _, ev := range pdus {
		if e, ok := res[ev.EventID()]; !ok || e == "" {
			t.Errorf("%s %s: A answered %q, want a per-PDU error", ev.Type(), ev.EventID(), e)
		}
		if ok, body := rr.visible(t, ev.EventID()); ok {
			t.Errorf("%s %s is visible at A: %v", ev.Type(), ev.EventID(), body)
		}
	}
}

// otherKey is a fresh identity: a key and the server name derived from it.
func otherKey(t *testing.T) (string, ed25519.PrivateKey) {
	t.Helper()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return identity.ServerNameForKey(key.Public().(ed25519.PublicKey)), key
}

// TestHostileWrongOrigin: a request whose X-Matrix origin is not the libp2p
// peer it came over is refused, even when validly signed by the claimed
// origin's key; so is a transaction whose body names another origin.
func TestHostileWrongOrigin(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	rr := startRogueRoom(ctx, t, core.PresetPublicChat)
	xName, xKey := otherKey(t)
	empty := map[string]any{"origin": xName, "origin_server_ts": 1, "pdus": []any{}}
	for _, tc := range []struct {
		name        string
		origin      string
		key         ed25519.PrivateKey
		body        any
		wantStatus  int
		wantErrcode string
	}{
		{"another server, signed with its key", xName, xKey, empty, http.StatusForbidden, "M_FORBIDDEN"},
		{"the target itself, signed by the rogue", rr.a.node.ServerName(), rr.r.key, empty, http.StatusUnauthorized, "M_UNAUTHORIZED"},
		{"the body names another origin", rr.r.name, rr.r.key, empty, http.StatusForbidden, "M_FORBIDDEN"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := rr.r.request(ctx, tc.origin, tc.key, "PUT", "/_matrix/federation/v1/send/wrong-"+strings.ReplaceAll(tc.name, " ", "-"), tc.body)
			var e struct{ Errcode string }
			_ = json.Unmarshal(body, &e)
			if status != tc.wantStatus || e.Errcode != tc.wantErrcode {
				t.Fatalf("A answered %d %s, want %d %s", status, body, tc.wantStatus, tc.wantErrcode)
			}
		})
	}
}

// TestHostileForgedSender: PDUs the rogue signs for users of other servers
// (A's own alice, a stranger) are refused and never seen at A.
func TestHostileForgedSender(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	rr := startRogueRoom(ctx, t, core.PresetPublicChat)
	stranger, _ := otherKey(t)
	var pdus []gomatrixserverlib.PDU
	for _, sender := range []string{rr.alice.UserID, "@eve:" + stranger} {
		proto := rr.r.event(rr.rs, "m", "m.room.message", nil, `{"msgtype":"m.text","body":"forged sender"}`)
		proto.SenderID = sender
		pdus = append(pdus, rr.r.sign(rr.rs.version, proto))
	}
	rr.mustRefuse(ctx, t, pdus...)
}

// TestHostileBadSignature: a PDU of the rogue's own user signed with
// another key is refused and never seen at A.
func TestHostileBadSignature(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	rr := startRogueRoom(ctx, t, core.PresetPublicChat)
	_, key := otherKey(t)
	proto := rr.r.event(rr.rs, "m", "m.room.message", nil, `{"msgtype":"m.text","body":"bad signature"}`)
	ev := testnet.SignPDU(t, rr.rs.version, proto, time.Now(), rr.r.name, key)
	rr.mustRefuse(ctx, t, ev)
}

// TestHostileHashMismatch: a signed PDU whose content was changed after
// signing (its content hash no longer matches) is never served with the
// changed content: the spec has it redacted, or it is refused.
func TestHostileHashMismatch(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	rr := startRogueRoom(ctx, t, core.PresetPublicChat)
	ev := rr.r.sign(rr.rs.version, rr.r.event(rr.rs, "m", "m.room.message", nil, `{"msgtype":"m.text","body":"original"}`))
	var m map[string]any
	if err := json.Unmarshal(ev.JSON(), &m); err != nil {
		t.Fatal(err)
	}
	m["content"] = map[string]any{"msgtype": "m.text", "body": "tampered"}
	tampered, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	status, body := rr.r.do(ctx, "PUT", "/_matrix/federation/v1/send/tampered",
		map[string]any{"origin": rr.r.name, "origin_server_ts": time.Now().UnixMilli(), "pdus": []json.RawMessage{tampered}})
	if status != http.StatusOK {
		t.Fatalf("send: %d %s", status, body)
	}
	rr.honest(ctx, t)
	page, err := rr.a.node.RoomEvents(ctx, rr.alice.UserID, rr.roomID, core.Range{Backwards: true, Limit: 50})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range page.Events {
		if bytes.Contains(e.PDU.JSON(), []byte("tampered")) {
			t.Fatalf("A serves the tampered content: %s", e.PDU.JSON())
		}
	}
	// Served at all, it is the redacted event: no content.
	if ok, body := rr.visible(t, ev.EventID()); ok && len(body["content"].(map[string]any)) != 0 {
		t.Fatalf("A serves the event with content: %v", body)
	}
}

// TestHostilePowerLevelTakeover: a member without power gives itself power,
// renames the room and bans the room's admin: each is refused, and A's
// state is as it was.
func TestHostilePowerLevelTakeover(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	rr := startRogueRoom(ctx, t, core.PresetPublicChat)
	pl, err := rr.a.node.CurrentStateEvent(ctx, rr.roomID, "m.room.power_levels", "")
	if err != nil {
		t.Fatal(err)
	}
	var content map[string]any
	if err := json.Unmarshal(pl.PDU.Content(), &content); err != nil {
		t.Fatal(err)
	}
	content["users"].(map[string]any)[rr.r.userID("m")] = 100
	raw, _ := json.Marshal(content)
	empty, aliceKey := "", rr.alice.UserID
	takeover := rr.r.sign(rr.rs.version, rr.r.event(rr.rs, "m", "m.room.power_levels", &empty, string(raw)))
	rename := rr.r.sign(rr.rs.version, rr.r.event(rr.rs, "m", "m.room.name", &empty, `{"name":"owned"}`))
	ban := rr.r.sign(rr.rs.version, rr.r.event(rr.rs, "m", "m.room.member", &aliceKey, `{"membership":"ban"}`))
	rr.mustRefuse(ctx, t, takeover, rename, ban)

	now, err := rr.a.node.CurrentStateEvent(ctx, rr.roomID, "m.room.power_levels", "")
	if err != nil {
		t.Fatal(err)
	}
	if now.PDU.EventID() != pl.PDU.EventID() {
		t.Fatalf("power levels changed to %s", now.PDU.Content())
	}
	if mi, err := rr.a.node.Membership(ctx, rr.roomID, rr.alice.UserID); err != nil || mi.Membership != "join" {
		t.Fatalf("alice's membership %+v (%v), want join", mi, err)
	}
	rr.say(ctx, t, "still mine")
}

// TestHostilePrivateRoomReads: a server with no member in a private room
// reads none of it through any federation endpoint.
func TestHostilePrivateRoomReads(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	rr := startRogueRoom(ctx, t, core.PresetPrivateChat)
	secret := rr.say(ctx, t, "the secret plan")
	room, ev := url.PathEscape(rr.roomID), url.PathEscape(secret)
	for _, tc := range []struct {
		method, uri string
		body        any
	}{
		{"GET", "/_matrix/federation/v1/event/" + ev, nil},
		{"GET", "/_matrix/federation/v1/state/" + room + "?event_id=" + ev, nil},
		{"GET", "/_matrix/federation/v1/state_ids/" + room + "?event_id=" + ev, nil},
		{"GET", "/_matrix/federation/v1/event_auth/" + room + "/" + ev, nil},
		{"GET", "/_matrix/federation/v1/backfill/" + room + "?v=" + ev + "&limit=10", nil},
		{"POST", "/_matrix/federation/v1/get_missing_events/" + room, map[string]any{"earliest_events": []string{}, "latest_events": []string{secret}, "limit": 10}},
		{"GET", "/_matrix/federation/v1/make_join/" + room + "/" + url.PathEscape(rr.r.userID("m")) + "?ver=10", nil},
	} {
		t.Run(tc.method+" "+strings.SplitN(tc.uri, "/", 6)[4], func(t *testing.T) {
			status, body := rr.r.do(ctx, tc.method, tc.uri, tc.body)
			var e struct{ Errcode string }
			_ = json.Unmarshal(body, &e)
			if status != http.StatusForbidden || e.Errcode != "M_FORBIDDEN" {
				t.Errorf("A answered %d %s, want 403 M_FORBIDDEN", status, body)
			}
			if bytes.Contains(body, []byte("secret plan")) {
				t.Errorf("the answer holds the private message: %s", body)
			}
		})
	}
}

// TestHostileForgedEDUs: typing, receipts, presence, to-device messages and
// device-list updates the rogue sends in the name of users of other servers
// never reach A's user; the rogue's own typing does (so the forged ones were
// processed before it).
func TestHostileForgedEDUs(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	rr := startRogueRoom(ctx, t, core.PresetPublicChat)
	stranger, _ := otherKey(t)
	eve := "@eve:" + stranger
	latest := rr.say(ctx, t, "read me")
	since := syncOnce(t, rr.a, rr.alice.AccessToken, "").NextBatch

	edus := []map[string]any{}
	for _, forged := range []string{eve, rr.alice.UserID} {
		edus = append(edus,
			map[string]any{"edu_type": "m.typing", "content": map[string]any{"room_id": rr.roomID, "user_id": forged, "typing": true}},
			map[string]any{"edu_type": "m.receipt", "content": map[string]any{rr.roomID: map[string]any{"m.read": map[string]any{
				forged: map[string]any{"event_ids": []string{latest}, "data": map[string]any{"ts": 1}}}}}},
			map[string]any{"edu_type": "m.presence", "content": map[string]any{"push": []any{
				map[string]any{"user_id": forged, "presence": "online", "status_msg": "forged", "last_active_ago": 1}}}},
			map[string]any{"edu_type": "m.direct_to_device", "content": map[string]any{"sender": forged, "type": "m.forged",
				"message_id": "forged-" + forged, "messages": map[string]any{rr.alice.UserID: map[string]any{"*": map[string]any{"body": "forged"}}}}},
			map[string]any{"edu_type": "m.device_list_update", "content": map[string]any{"user_id": forged, "device_id": "FORGED",
				"stream_id": 1, "prev_id": []int{}, "deleted": false}},
		)
	}
	rr.r.send(ctx, nil, edus)
	own := rr.r.userID("m")
	rr.r.send(ctx, nil, []map[string]any{{"edu_type": "m.typing", "content": map[string]any{"room_id": rr.roomID, "user_id": own, "typing": true}}})

	s := syncer{t: t, app: rr.a, token: rr.alice.AccessToken, since: since}
	var seen []eduSync
	s.until(ctx, "the rogue's own typing", func(resp eduSync) bool {
		seen = append(seen, resp)
		for _, e := range resp.Rooms.Join[rr.roomID].Ephemeral.Events {
			if e.Type == "m.typing" && strings.Contains(fmt.Sprint(e.Content["user_ids"]), own) {
				return true
			}
		}
		return false
	})
	for _, resp := range seen {
		raw, _ := json.Marshal(resp)
		for _, bad := range []string{eve, "forged", "FORGED"} {
			if bytes.Contains(raw, []byte(bad)) {
				t.Errorf("alice's /sync shows %q: %s", bad, raw)
			}
		}
		for _, e := range resp.Rooms.Join[rr.roomID].Ephemeral.Events {
			if e.Type == "m.typing" && strings.Contains(fmt.Sprint(e.Content["user_ids"]), rr.alice.UserID) {
				t.Errorf("alice is shown typing, from the rogue's EDU: %v", e.Content)
			}
		}
	}
}

// TestHostileUnknownPrevs1000: a PDU naming 1,000 prev events nobody has
// costs A a bounded number of requests, is refused, and the room goes on.
func TestHostileUnknownPrevs1000(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 180*time.Second)
	defer cancel()
	rr := startRogueRoom(ctx, t, core.PresetPublicChat)
	proto := rr.r.event(rr.rs, "m", "m.room.message", nil, `{"msgtype":"m.text","body":"a thousand parents"}`)
	prevs := make([]string, 1000)
	for i := range prevs {
		prevs[i] = fmt.Sprintf("$unknown%04d%s", i, strings.Repeat("x", 30))
	}
	proto.PrevEvents = prevs
	before := rr.r.requests.Load()
	rr.mustRefuse(ctx, t, rr.r.sign(rr.rs.version, proto))
	if n := rr.r.requests.Load() - before; n > maxRogueRequests {
		t.Errorf("A made %d requests to the rogue for one PDU, want at most %d", n, maxRogueRequests)
	}
	rr.say(ctx, t, "after a thousand parents")
}

// maxRogueRequests bounds what one hostile PDU may make A ask of its
// sender: 10 get_missing_events rounds, and a few state and event fetches.
const maxRogueRequests = 40

// TestHostileDeepChain3000: the tip of a 3,000-event chain A has never
// seen costs A a bounded walk (never the whole chain), and the room goes on.
func TestHostileDeepChain3000(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 240*time.Second)
	defer cancel()
	rr := startRogueRoom(ctx, t, core.PresetPublicChat)
	chain := rr.r.chain(rr.rs, "m", 3000)
	before := rr.r.requests.Load()
	tip := chain[len(chain)-1]
	rr.r.send(ctx, []gomatrixserverlib.PDU{tip}, nil)
	n := rr.r.requests.Load() - before
	t.Logf("A made %d requests to the rogue", n)
	if n > maxRogueRequests {
		t.Errorf("A made %d requests to the rogue for one PDU, want at most %d", n, maxRogueRequests)
	}
	page, err := rr.a.node.RoomEvents(ctx, rr.alice.UserID, rr.roomID, core.Range{Backwards: true, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("A's room has %d events", len(page.Events))
	if n := len(page.Events); n >= 1000 {
		t.Errorf("A took in %d events of the chain; its walk is bounded at 500", n)
	}
	rr.say(ctx, t, "after the deep chain")
}

// TestHostileSlowOriginBlocksNoOther: a rogue that answers A's gap-filling
// requests never (holding its own transaction open for minutes) delays no
// other origin's transactions, not even one that shared its lock stripe
// when A striped its per-origin locks 64 ways.
func TestHostileSlowOriginBlocksNoOther(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	rr := startRogueRoom(ctx, t, core.PresetPublicChat)
	stall, stalled := make(chan struct{}), make(chan struct{}, 8)
	rr.r.mu.Lock()
	rr.r.stall, rr.r.stalled = stall, stalled
	rr.r.mu.Unlock()
	// A gap: A must ask the rogue for the first event to take the second.
	// Its answer, once the stall ends, does not matter.
	gap := rr.r.chain(rr.rs, "m", 2)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _, _ = rr.r.try(ctx, rr.r.name, rr.r.key, "PUT", "/_matrix/federation/v1/send/stalled", rr.r.txn([]json.RawMessage{gap[1].JSON()}, nil))
	}()
	defer func() { close(stall); <-done }()
	select {
	case <-stalled:
	case <-ctx.Done():
		t.Fatal("A never asked the rogue for the missing event")
	}
	asked := rr.r.requests.Load()

	stripe := func(name string) uint32 {
		h := fnv.New32a()
		h.Write([]byte(name))
		return h.Sum32() % 64
	}
	var key ed25519.PrivateKey
	for {
		var name string
		name, key = otherKey(t)
		if stripe(name) == stripe(rr.r.name) {
			break
		}
	}
	other := newRogueWithKey(t, rr.a, key)
	if res := other.send(ctx, nil, []map[string]any{}); len(res) != 0 {
		t.Fatalf("an empty transaction: %v", res)
	}
	// Answered while A still waits for its first request to the rogue,
	// not after A gave up on it (its federation client's 30 s timeout) and
	// asked again, as when the two origins shared a lock.
	if n := rr.r.requests.Load(); n != asked {
		t.Fatalf("the other origin was answered only after A gave up on the slow one (%d requests to it, then %d)", asked, n)
	}
}

// TestHostileDuplicateKeys: a PDU whose content names a key twice, validly
// signed over what Go reads (the last value), is refused: a client or
// server whose parser keeps the first value would show other content.
func TestHostileDuplicateKeys(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	rr := startRogueRoom(ctx, t, core.PresetPublicChat)
	ev := rr.r.sign(rr.rs.version, rr.r.event(rr.rs, "m", "m.room.message", nil, `{"msgtype":"m.text","body":"what Go reads"}`))
	raw := bytes.Replace(ev.JSON(), []byte(`"content":{`), []byte(`"content":{"body":"what others read",`), 1)
	if bytes.Equal(raw, ev.JSON()) {
		t.Fatalf("no content object in %s", ev.JSON())
	}
	status, body := rr.r.do(ctx, "PUT", "/_matrix/federation/v1/send/dupkeys",
		map[string]any{"origin": rr.r.name, "origin_server_ts": time.Now().UnixMilli(), "pdus": []json.RawMessage{raw}})
	var res struct {
		PDUs map[string]struct{ Error string } `json:"pdus"`
	}
	if status != http.StatusOK || json.Unmarshal(body, &res) != nil {
		t.Fatalf("send: %d %s", status, body)
	}
	if res.PDUs[ev.EventID()].Error == "" {
		t.Errorf("A answered %s, want a per-PDU error for %s", body, ev.EventID())
	}
	rr.honest(ctx, t)
	if ok, got := rr.visible(t, ev.EventID()); ok {
		t.Errorf("the event with a duplicate key is visible at A: %v", got)
	}
}
