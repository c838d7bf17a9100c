package federation

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgenode/edgenode/internal/mxhttp"
	"github.com/edgenode/edgenode/internal/testnet"
	"github.com/edgenode/edgenode/node"
	"github.com/edgenode/edgenode/node/core"
	"github.com/edgenode/edgenode/node/inbound"
	"github.com/matrix-org/gomatrixserverlib"
	"github.com/matrix-org/gomatrixserverlib/spec"
)

// remoteRoom builds the events of a room as server s would: signed with its
// key, explicit prev and auth events by name.
type remoteRoom struct {
	t      *testing.T
	key    ed25519.PrivateKey
	server string
	roomID string
	ts     time.Time
	evs    map[string]gomatrixserverlib.PDU
}

func newRemoteRoom(t *testing.T, s *fedServer) *remoteRoom {
	return &remoteRoom{t: t, key: s.n.SigningKey(), server: s.name(), roomID: "!r" + time.Now().Format("150405.000000") + ":" + s.name(),
		ts: time.UnixMilli(1_700_000_000_000), evs: map[string]gomatrixserverlib.PDU{}}
}

func (r *remoteRoom) user(local string) string { return "@" + local + ":" + r.server }

func (r *remoteRoom) id(name string) string {
	if ev, ok := r.evs[name]; ok {
		return ev.EventID()
	}
	return name // lets a test name an event that does not exist
}

func (r *remoteRoom) build(name, sender, typ string, stateKey *string, content any, prev, auth []string) gomatrixserverlib.PDU {
	r.t.Helper()
	raw, _ := json.Marshal(content)
	var depth int64
	prevIDs, authIDs := []string{}, []string{}
	for _, p := range prev {
		prevIDs = append(prevIDs, r.id(p))
		if ev, ok := r.evs[p]; ok {
			depth = max(depth, ev.Depth())
		}
	}
	for _, a := range auth {
		authIDs = append(authIDs, r.id(a))
	}
	proto := gomatrixserverlib.ProtoEvent{SenderID: sender, RoomID: r.roomID, Type: typ, StateKey: stateKey,
		PrevEvents: prevIDs, AuthEvents: authIDs, Depth: depth + 1, Content: raw}
	verImpl, _ := gomatrixserverlib.GetRoomVersion(gomatrixserverlib.RoomVersionV10)
	ev := testnet.SignPDU(r.t, verImpl, proto, r.ts, r.server, r.key)
	r.ts = r.ts.Add(time.Second)
	ev.EventID()
	r.evs[name] = ev
	return ev
}

func (r *remoteRoom) json(names ...string) []json.RawMessage {
	out := make([]json.RawMessage, len(names))
	for i, n := range names {
		out[i] = r.evs[n].JSON()
	}
	return out
}

func sk(s string) *string { return &s }

type txnBody struct {
	Origin         string            `json:"origin"`
	OriginServerTS int64             `json:"origin_server_ts"`
	PDUs           []json.RawMessage `json:"pdus"`
	EDUs           []json.RawMessage `json:"edus,omitempty"`
}

var txnCounter atomic.Int64

// sendTxn PUTs a transaction from B to A, signed by B.
func (p pair) sendTxn(t *testing.T, txnID string, body any) result {
	t.Helper()
	if txnID == "" {
		txnID = fmt.Sprintf("txn%d", txnCounter.Add(1))
	}
	req := signed(t, p.a, p.b.name(), p.a.name(), p.b.n.SigningKey(), "PUT", "/_matrix/federation/v1/send/"+txnID, body)
	return do(t, req)
}

func (p pair) txn(pdus ...json.RawMessage) txnBody {
	return txnBody{Origin: p.b.name(), OriginServerTS: time.Now().UnixMilli(), PDUs: append([]json.RawMessage{}, pdus...)}
}

// pduError is the /send response's error for an event ("" when accepted);
// a missing entry fails the test.
func pduError(t *testing.T, r result, eventID string) string {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("send: %d %v", r.status, r.body)
	}
	pdus, _ := r.body["pdus"].(map[string]any)
	e, ok := pdus[eventID].(map[string]any)
	if !ok {
		t.Fatalf("send: no result for %s in %v", eventID, r.body)
	}
	s, _ := e["error"].(string)
	return s
}

// setupRemoteRoom makes a world-readable room on A whose creator is B's @bob:
// its first events are given to A's node directly (A learns a room only by
// a join, which federation cannot do yet); everything after goes over /send.
func setupRemoteRoom(t *testing.T, p pair) *remoteRoom {
	t.Helper()
	r := newRemoteRoom(t, p.b)
	bob := r.user("bob")
	r.build("create", bob, spec.MRoomCreate, sk(""), map[string]any{"room_version": "10", "creator": bob}, nil, nil)
	r.build("bob", bob, spec.MRoomMember, sk(bob), map[string]any{"membership": "join"}, []string{"create"}, []string{"create"})
	r.build("pl", bob, spec.MRoomPowerLevels, sk(""), map[string]any{"users": map[string]int{bob: 100}, "ban": 50}, []string{"bob"}, []string{"create", "bob"})
	r.build("jr", bob, spec.MRoomJoinRules, sk(""), map[string]any{"join_rule": "public"}, []string{"pl"}, []string{"create", "bob", "pl"})
	r.build("hv", bob, spec.MRoomHistoryVisibility, sk(""), map[string]any{"history_visibility": "world_readable"}, []string{"jr"}, []string{"create", "bob", "pl"})

	// Over /send, the unknown room is refused: nothing keyed by an event ID
	// can be said about it, so the response leaves it out.
	res := p.sendTxn(t, "", p.txn(r.json("create")...))
	if pdus, _ := res.body["pdus"].(map[string]any); res.status != http.StatusOK || len(pdus) != 0 {
		t.Fatalf("create over /send: %d %v", res.status, res.body)
	}
	results, err := p.a.n.InputFederatedPDUs(context.Background(), inbound.FederatedInput{
		Origin: p.b.name(), PDUs: r.json("create", "bob", "pl", "jr", "hv"), AllowNewRooms: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, res := range results {
		if res.Err != nil {
			t.Fatalf("bootstrap: %v", res.Err)
		}
	}
	// A takes PDUs only for rooms one of its users is in.
	local := testnet.RegisterWith(context.Background(), t, p.a.n, node.RegisterRequest{Localpart: "resident"})
	if _, err := p.a.n.Join(context.Background(), local.UserID, "", r.roomID); err != nil {
		t.Fatalf("local join: %v", err)
	}
	return r
}

func served(t *testing.T, n *node.Node, eventID string) bool {
	t.Helper()
	_, err := n.Event(context.Background(), "@someone:example.org", eventID)
	if err != nil && !errors.Is(err, core.ErrNotFound) {
		t.Fatal(err)
	}
	return err == nil
}

func TestSendTransaction(t *testing.T) {
	p := newPair(t)
	r := setupRemoteRoom(t, p)
	ctx := context.Background()
	bob, carol, dave := r.user("bob"), r.user("carol"), r.user("dave")
	head := []string{"create", "bob", "pl"}

	// A valid message: {} and served, in A's timeline.
	r.build("m1", bob, "m.room.message", nil, map[string]any{"body": "hello"}, []string{"hv"}, head)
	if e := pduError(t, p.sendTxn(t, "", p.txn(r.json("m1")...)), r.id("m1")); e != "" {
		t.Fatalf("m1: %s", e)
	}
	page, err := p.a.n.RoomEvents(ctx, "@someone:example.org", r.roomID, core.Range{Backwards: true, Limit: 1})
	if err != nil || len(page.Events) != 1 || page.Events[0].PDU.EventID() != r.id("m1") {
		t.Fatalf("RoomEvents: %+v %v", page, err)
	}

	// Bad signature: an error, not stored.
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	good := r.key
	r.key = other
	r.build("forged", bob, "m.room.message", nil, map[string]any{"body": "forged"}, []string{"m1"}, head)
	r.key = good
	// Tampered content: kept redacted.
	r.build("m2", bob, "m.room.message", nil, map[string]any{"body": "original"}, []string{"m1"}, head)
	tampered := bytes.Replace(r.evs["m2"].JSON(), []byte(`"original"`), []byte(`"tampered"`), 1)
	// Not joined: rejected.
	r.build("dave", dave, "m.room.message", nil, map[string]any{"body": "hi"}, []string{"m2"}, head)
	// Unknown prev events.
	r.build("orphan", bob, "m.room.message", nil, map[string]any{"body": "?"}, []string{"$nowhere"}, head)

	res := p.sendTxn(t, "", p.txn(r.json("forged")[0], tampered, r.json("dave")[0], r.json("orphan")[0],
		json.RawMessage(`"garbage"`), json.RawMessage(`{"room_id":"`+r.roomID+`"}`), json.RawMessage(`{}`)))
	if e := pduError(t, res, r.id("forged")); !strings.Contains(e, "signature") {
		t.Fatalf("forged: %q", e)
	}
	if e := pduError(t, res, r.id("m2")); e != "" {
		t.Fatalf("tampered: %q", e)
	}
	if e := pduError(t, res, r.id("dave")); !strings.Contains(e, "rejected") {
		t.Fatalf("not joined: %q", e)
	}
	if e := pduError(t, res, r.id("orphan")); !strings.Contains(e, "$nowhere") {
		t.Fatalf("orphan: %q", e)
	}
	if served(t, p.a.n, r.id("forged")) || served(t, p.a.n, r.id("dave")) || served(t, p.a.n, r.id("orphan")) {
		t.Fatal("a refused event is served")
	}
	ev, err := p.a.n.Event(ctx, "@someone:example.org", r.id("m2"))
	if err != nil || strings.Contains(string(ev.PDU.Content()), "body") {
		t.Fatalf("tampered event: %v %v, want stored redacted", ev, err)
	}

	// Soft-fail: carol joins and speaks, bob bans her, then her message on
	// the pre-ban DAG arrives.
	r.build("carol", carol, spec.MRoomMember, sk(carol), map[string]any{"membership": "join"}, []string{"m2"}, []string{"create", "pl", "jr"})
	r.build("c1", carol, "m.room.message", nil, map[string]any{"body": "c1"}, []string{"carol"}, []string{"create", "pl", "carol"})
	r.build("ban", bob, spec.MRoomMember, sk(carol), map[string]any{"membership": "ban"}, []string{"c1"}, []string{"create", "bob", "pl", "carol"})
	res = p.sendTxn(t, "", p.txn(r.json("ban", "c1", "carol")...))
	for _, n := range []string{"carol", "c1", "ban"} {
		if e := pduError(t, res, r.id(n)); e != "" {
			t.Fatalf("%s: %q", n, e)
		}
	}
	r.build("c2", carol, "m.room.message", nil, map[string]any{"body": "c2"}, []string{"c1"}, []string{"create", "pl", "carol"})
	if e := pduError(t, p.sendTxn(t, "", p.txn(r.json("c2")...)), r.id("c2")); !strings.Contains(e, "soft-failed") {
		t.Fatalf("c2: %q, want soft-failed", e)
	}
	if served(t, p.a.n, r.id("c2")) {
		t.Fatal("soft-failed event is served")
	}

	// A repeated txnId gets the same response and is not processed again:
	// the second body's event is not stored.
	r.build("m3", bob, "m.room.message", nil, map[string]any{"body": "three"}, []string{"ban"}, head)
	r.build("m4", bob, "m.room.message", nil, map[string]any{"body": "four"}, []string{"m3"}, head)
	first := p.sendTxn(t, "same", p.txn(r.json("m3")...))
	second := p.sendTxn(t, "same", p.txn(r.json("m4")...))
	a1, _ := json.Marshal(first.body)
	a2, _ := json.Marshal(second.body)
	if first.status != http.StatusOK || !bytes.Equal(a1, a2) {
		t.Fatalf("repeat: %d %s then %d %s", first.status, a1, second.status, a2)
	}
	if served(t, p.a.n, r.id("m4")) {
		t.Fatal("the repeated transaction was processed again")
	}
	// The same ID from another origin is another transaction (here refused
	// for its origin, see below); a new ID is processed.
	if e := pduError(t, p.sendTxn(t, "", p.txn(r.json("m4")...)), r.id("m4")); e != "" || !served(t, p.a.n, r.id("m4")) {
		t.Fatalf("m4: %q", e)
	}
}

func TestSendTransactionLimits(t *testing.T) {
	p := newPair(t)
	pdus := make([]json.RawMessage, MaxTxnPDUs+1)
	for i := range pdus {
		pdus[i] = json.RawMessage(`{}`)
	}
	expect(t, "51 PDUs", p.sendTxn(t, "", p.txn(pdus...)), http.StatusBadRequest, "M_BAD_JSON")
	body := p.txn()
	body.EDUs = make([]json.RawMessage, MaxTxnEDUs+1)
	for i := range body.EDUs {
		body.EDUs[i] = json.RawMessage(`{"edu_type":"m.typing","content":{}}`)
	}
	expect(t, "101 EDUs", p.sendTxn(t, "", body), http.StatusBadRequest, "M_BAD_JSON")

	// 50 PDUs and 100 EDUs are fine (EDUs are ignored for now).
	body.PDUs, body.EDUs = pdus[:MaxTxnPDUs], body.EDUs[:MaxTxnEDUs]
	if r := p.sendTxn(t, "", body); r.status != http.StatusOK {
		t.Fatalf("at the limits: %d %v", r.status, r.body)
	}

	// The body's origin must be the authenticated origin.
	body = p.txn()
	body.Origin = p.a.name()
	expect(t, "origin mismatch", p.sendTxn(t, "", body), http.StatusForbidden, "M_FORBIDDEN")

	// Malformed bodies.
	for name, b := range map[string]any{
		"pdus not a list":  map[string]any{"origin": p.b.name(), "pdus": 5},
		"no pdus":          map[string]any{"origin": p.b.name()},
		"no origin":        map[string]any{"pdus": []any{}},
		"origin not str":   map[string]any{"origin": 1, "pdus": []any{}},
		"array body":       []any{1, 2},
		"ts not a number":  map[string]any{"origin": p.b.name(), "pdus": []any{}, "origin_server_ts": "x"},
		"edus not objects": map[string]any{"origin": p.b.name(), "pdus": []any{}, "edus": "x"},
	} {
		expect(t, name, p.sendTxn(t, "", b), http.StatusBadRequest, "M_BAD_JSON")
	}
	req := signed(t, p.a, p.b.name(), p.a.name(), p.b.n.SigningKey(), "PUT", "/_matrix/federation/v1/send/empty", nil)
	expect(t, "no body", do(t, req), http.StatusBadRequest, "M_NOT_JSON")
	req = signed(t, p.a, p.b.name(), p.a.name(), p.b.n.SigningKey(), "GET", "/_matrix/federation/v1/send/get", nil)
	if r := do(t, req); r.status != http.StatusMethodNotAllowed && r.status != http.StatusNotFound {
		t.Fatalf("GET /send: %d %v", r.status, r.body)
	}
}

func FuzzSendTransaction(f *testing.F) {
	for _, seed := range []string{
		`{"origin":"o","origin_server_ts":1,"pdus":[],"edus":[]}`,
		`{"origin":"o","pdus":[{}],"edus":[{"edu_type":"m.typing"}]}`,
		`{"origin":"o","pdus":[{"room_id":"!a:b","type":"m.room.create","state_key":"","content":{"room_version":"10"}}]}`,
		`{"origin":"o","pdus":[null,1,"x",[],{"room_id":5}]}`,
		`{"pdus":5}`, `[]`, `null`, ``, `{`,
	} {
		f.Add([]byte(seed))
	}
	for _, seed := range realisticTxnSeeds(f) {
		f.Add([]byte(seed))
	}
	n := testnet.OpenNode(f, testnet.NodeConfig(f.TempDir()))
	f.Fuzz(func(t *testing.T, body []byte) {
		txn, err := parseTransaction(body)
		if err != nil {
			var me *mxhttp.Error
			if !errors.As(err, &me) || me.Status != http.StatusBadRequest {
				t.Fatalf("parseTransaction(%q) = %v, want a 400", body, err)
			}
			return
		}
		if len(txn.PDUs) > MaxTxnPDUs || len(txn.EDUs) > MaxTxnEDUs {
			t.Fatalf("limits not enforced: %d PDUs, %d EDUs", len(txn.PDUs), len(txn.EDUs))
		}
		res, err := n.InputFederatedPDUs(context.Background(), inbound.FederatedInput{Origin: txn.Origin, PDUs: txn.PDUs, AllowNewRooms: true})
		if err != nil || len(res) != len(txn.PDUs) {
			t.Fatalf("InputFederatedPDUs: %d results for %d PDUs, %v", len(res), len(txn.PDUs), err)
		}
	})
}
