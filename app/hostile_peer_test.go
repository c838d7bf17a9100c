package app

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgenode/edgenode/internal/identity"
	"github.com/edgenode/edgenode/internal/testnet"
	"github.com/edgenode/edgenode/p2ptransport"
	"github.com/matrix-org/gomatrixserverlib"
	"github.com/matrix-org/gomatrixserverlib/fclient"
	"github.com/matrix-org/gomatrixserverlib/spec"
)

// rogue is a hostile peer: a real libp2p host (QUIC on 127.0.0.1) with an
// ed25519 key of its own and no node behind it. It signs what it likes,
// answers A's requests from the events it chooses to serve (counting them),
// and talks to A through A's real federation API. Identities are free on a
// P2P network, so this is what any stranger can do.
type rogue struct {
	t      *testing.T
	host   *p2ptransport.Host
	name   string // server name: the hex of its key
	key    ed25519.PrivateKey
	a      string // the target's server name
	client *http.Client

	mu     sync.Mutex
	served map[string]gomatrixserverlib.PDU // events it answers /event and get_missing_events with
	// stall, when set, holds A's get_missing_events requests until it is
	// closed (or A gives up on them), after signalling each on stalled.
	stall, stalled chan struct{}

	requests atomic.Int64 // requests A made to it, other than /send
}

// newRogue starts a rogue peer with a fresh key connected to a.
func newRogue(t *testing.T, a *App) *rogue {
	t.Helper()
	_, key := otherKey(t)
	return newRogueWithKey(t, a, key)
}

// newRogueWithKey starts a rogue peer with key connected to a.
func newRogueWithKey(t *testing.T, a *App, key ed25519.PrivateKey) *rogue {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	h, err := p2ptransport.New(ctx, p2ptransport.Config{
		PrivateKey: key, ListenAddrs: []string{"/ip4/127.0.0.1/udp/0/quic-v1"}, StaticPeers: quicAddrs(a),
		Profile: "phone", Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	r := &rogue{t: t, host: h, name: h.ServerName(), key: key, a: a.node.ServerName(),
		client: &http.Client{Transport: h.RoundTripper(), Timeout: 60 * time.Second}, served: map[string]gomatrixserverlib.PDU{}}
	srv := &http.Server{Handler: r.handler(), ConnContext: p2ptransport.ConnContext, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(h.Listener()) }()
	t.Cleanup(func() {
		_ = srv.Close()
		_ = h.Close()
	})
	return r
}

// userID is a user of the rogue's server.
func (r *rogue) userID(localpart string) string { return "@" + localpart + ":" + r.name }

// handler answers A: /send accepts whatever A delivers (so A's queue to the
// rogue stays healthy), /event and get_missing_events come from served, and
// anything else is M_NOT_FOUND.
func (r *rogue) handler() http.Handler {
	mux := http.NewServeMux()
	writeJSON := func(w http.ResponseWriter, status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(v)
	}
	mux.HandleFunc("PUT /_matrix/federation/v1/send/{txnID}", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"pdus": map[string]any{}})
	})
	mux.HandleFunc("GET /_matrix/federation/v1/event/{eventID}", func(w http.ResponseWriter, req *http.Request) {
		r.requests.Add(1)
		r.mu.Lock()
		ev, ok := r.served[req.PathValue("eventID")]
		r.mu.Unlock()
		if !ok {
			writeJSON(w, http.StatusNotFound, map[string]string{"errcode": "M_NOT_FOUND", "error": "no"})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"origin": r.name, "origin_server_ts": time.Now().UnixMilli(), "pdus": []json.RawMessage{ev.JSON()}})
	})
	mux.HandleFunc("POST /_matrix/federation/v1/get_missing_events/{roomID}", func(w http.ResponseWriter, req *http.Request) {
		r.requests.Add(1)
		r.mu.Lock()
		stall, stalled := r.stall, r.stalled
		r.mu.Unlock()
		if stall != nil {
			stalled <- struct{}{}
			select {
			case <-stall:
			case <-req.Context().Done():
				return
			}
		}
		var body struct {
			Limit    int      `json:"limit"`
			Earliest []string `json:"earliest_events"`
			Latest   []string `json:"latest_events"`
		}
		if err := json.NewDecoder(io.LimitReader(req.Body, 1<<20)).Decode(&body); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"errcode": "M_BAD_JSON", "error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"events": r.walk(body.Latest, body.Earliest, body.Limit)})
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		r.requests.Add(1)
		writeJSON(w, http.StatusNotFound, map[string]string{"errcode": "M_NOT_FOUND", "error": "no"})
	})
	return mux
}

// walk answers get_missing_events: the served events behind latest, newest
// first, stopping at earliest, at most limit of them.
func (r *rogue) walk(latest, earliest []string, limit int) []json.RawMessage {
	r.mu.Lock()
	defer r.mu.Unlock()
	seen := map[string]bool{}
	for _, id := range append(append([]string{}, latest...), earliest...) {
		seen[id] = true
	}
	var out []json.RawMessage
	queue := []string{}
	for _, id := range latest {
		if ev, ok := r.served[id]; ok {
			queue = append(queue, ev.PrevEventIDs()...)
		}
	}
	for len(queue) > 0 && len(out) < limit {
		id := queue[0]
		queue = queue[1:]
		if seen[id] {
			continue
		}
		seen[id] = true
		ev, ok := r.served[id]
		if !ok {
			continue
		}
		out = append(out, ev.JSON())
		queue = append(queue, ev.PrevEventIDs()...)
	}
	return out
}

// serve makes the rogue answer A's requests for evs.
func (r *rogue) serve(evs ...gomatrixserverlib.PDU) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, ev := range evs {
		r.served[ev.EventID()] = ev
	}
}

// request sends a federation request to A signed as origin with key, and
// returns the status and the raw body.
func (r *rogue) request(ctx context.Context, origin string, key ed25519.PrivateKey, method, uri string, content any) (int, []byte) {
	r.t.Helper()
	status, body, err := r.try(ctx, origin, key, method, uri, content)
	if err != nil {
		r.t.Fatalf("%s %s: %v", method, uri, err)
	}
	return status, body
}

// try is request for any goroutine: it returns its error.
func (r *rogue) try(ctx context.Context, origin string, key ed25519.PrivateKey, method, uri string, content any) (int, []byte, error) {
	fr := fclient.NewFederationRequest(method, spec.ServerName(origin), spec.ServerName(r.a), uri)
	if content != nil {
		if err := fr.SetContent(content); err != nil {
			return 0, nil, err
		}
	}
	if err := fr.Sign(spec.ServerName(origin), identity.KeyID, key); err != nil {
		return 0, nil, err
	}
	req, err := fr.HTTPRequest()
	if err != nil {
		return 0, nil, err
	}
	res, err := r.client.Do(req.WithContext(ctx))
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(res.Body, 8<<20))
	return res.StatusCode, raw, err
}

// do is request signed as the rogue itself.
func (r *rogue) do(ctx context.Context, method, uri string, content any) (int, []byte) {
	r.t.Helper()
	return r.request(ctx, r.name, r.key, method, uri, content)
}

// send delivers pdus and edus to A in one transaction through /send and
// returns A's per-PDU answers (event ID -> error, "" when accepted).
func (r *rogue) send(ctx context.Context, pdus []gomatrixserverlib.PDU, edus []map[string]any) map[string]string {
	r.t.Helper()
	raw := make([]json.RawMessage, 0, len(pdus))
	for _, ev := range pdus {
		raw = append(raw, ev.JSON())
	}
	return r.sendRaw(ctx, raw, edus)
}

// sendRaw is send of PDUs as JSON, which may be what no library would
// build.
func (r *rogue) sendRaw(ctx context.Context, pdus []json.RawMessage, edus []map[string]any) map[string]string {
	r.t.Helper()
	txn := r.txn(pdus, edus)
	id := fmt.Sprintf("rogue%d", time.Now().UnixNano())
	for {
		status, body := r.do(ctx, "PUT", "/_matrix/federation/v1/send/"+id, txn)
		var res struct {
			PDUs       map[string]struct{ Error string } `json:"pdus"`
			RetryAfter int64                             `json:"retry_after_ms"`
		}
		_ = json.Unmarshal(body, &res)
		if status == http.StatusTooManyRequests && res.RetryAfter > 0 {
			// As a sending server would: wait as told, bounded by ctx.
			select {
			case <-time.After(time.Duration(res.RetryAfter) * time.Millisecond):
				continue
			case <-ctx.Done():
				r.t.Fatalf("send: still limited: %v", ctx.Err())
			}
		}
		if status != http.StatusOK {
			r.t.Fatalf("send: %d %s", status, body)
		}
		out := map[string]string{}
		for id, e := range res.PDUs {
			out[id] = e.Error
		}
		return out
	}
}

// txn is the body of a /send of pdus and edus.
func (r *rogue) txn(pdus []json.RawMessage, edus []map[string]any) map[string]any {
	if pdus == nil {
		pdus = []json.RawMessage{}
	}
	if edus == nil {
		edus = []map[string]any{}
	}
	return map[string]any{"origin": r.name, "origin_server_ts": time.Now().UnixMilli(), "pdus": pdus, "edus": edus}
}

// roomState is what the rogue knows of a room it joined: the room version,
// the state it needs for auth, and the event its next event follows.
type roomState struct {
	id      string
	version gomatrixserverlib.IRoomVersion
	auth    map[string]string // "type|state_key" -> event ID
	last    gomatrixserverlib.PDU
}

// join joins localpart of the rogue's server to A's room through A's real
// make_join and send_join.
func (r *rogue) join(ctx context.Context, roomID, localpart string) *roomState {
	r.t.Helper()
	userID := r.userID(localpart)
	status, body := r.do(ctx, "GET", "/_matrix/federation/v1/make_join/"+url.PathEscape(roomID)+"/"+url.PathEscape(userID)+"?ver=10&ver=11", nil)
	if status != http.StatusOK {
		r.t.Fatalf("make_join: %d %s", status, body)
	}
	var mj struct {
		Event       gomatrixserverlib.ProtoEvent  `json:"event"`
		RoomVersion gomatrixserverlib.RoomVersion `json:"room_version"`
	}
	if err := json.Unmarshal(body, &mj); err != nil {
		r.t.Fatalf("make_join: %v: %s", err, body)
	}
	verImpl, err := gomatrixserverlib.GetRoomVersion(mj.RoomVersion)
	if err != nil {
		r.t.Fatal(err)
	}
	joinEv := r.sign(verImpl, mj.Event)
	status, body = r.do(ctx, "PUT", "/_matrix/federation/v2/send_join/"+url.PathEscape(roomID)+"/"+url.PathEscape(joinEv.EventID()), json.RawMessage(joinEv.JSON()))
	if status != http.StatusOK {
		r.t.Fatalf("send_join: %d %s", status, body)
	}
	var sj struct {
		State []json.RawMessage `json:"state"`
	}
	if err := json.Unmarshal(body, &sj); err != nil {
		r.t.Fatalf("send_join: %v", err)
	}
	rs := &roomState{id: roomID, version: verImpl, auth: map[string]string{}, last: joinEv}
	for _, raw := range sj.State {
		var ev struct {
			EventID  string  `json:"event_id"`
			Type     string  `json:"type"`
			StateKey *string `json:"state_key"`
		}
		if err := json.Unmarshal(raw, &ev); err != nil || ev.StateKey == nil {
			continue
		}
		if ev.EventID == "" { // room versions 3+ carry no event_id: compute it
			pdu, err := verImpl.NewEventFromTrustedJSON(raw, false)
			if err != nil {
				r.t.Fatal(err)
			}
			ev.EventID = pdu.EventID()
		}
		rs.auth[ev.Type+"|"+*ev.StateKey] = ev.EventID
	}
	rs.auth["m.room.member|"+userID] = joinEv.EventID()
	r.serve(joinEv)
	return rs
}

// sign builds and signs proto with the rogue's key.
func (r *rogue) sign(verImpl gomatrixserverlib.IRoomVersion, proto gomatrixserverlib.ProtoEvent) gomatrixserverlib.PDU {
	r.t.Helper()
	ev := testnet.SignPDU(r.t, verImpl, proto, time.Now(), r.name, r.key)
	ev.EventID() // cached now, before the event is shared between goroutines
	return ev
}

// event builds an event of the rogue's user localpart in rs that follows
// rs.last, authed by the create event, the power levels and the sender's
// membership. It does not advance rs.last: chain does.
func (r *rogue) event(rs *roomState, localpart, evType string, stateKey *string, content string) gomatrixserverlib.ProtoEvent {
	sender := r.userID(localpart)
	auth := []string{rs.auth["m.room.create|"], rs.auth["m.room.power_levels|"], rs.auth["m.room.member|"+sender]}
	return gomatrixserverlib.ProtoEvent{SenderID: sender, RoomID: rs.id, Type: evType, StateKey: stateKey,
		PrevEvents: []string{rs.last.EventID()}, AuthEvents: auth, Depth: rs.last.Depth() + 1, Content: spec.RawJSON(content)}
}

// chain builds n messages of localpart, each following the one before, from
// rs.last on; rs.last becomes the newest. The rogue serves them all.
func (r *rogue) chain(rs *roomState, localpart string, n int) []gomatrixserverlib.PDU {
	out := make([]gomatrixserverlib.PDU, 0, n)
	for i := range n {
		ev := r.sign(rs.version, r.event(rs, localpart, "m.room.message", nil, fmt.Sprintf(`{"msgtype":"m.text","body":"chain %d"}`, i)))
		rs.last = ev
		out = append(out, ev)
	}
	r.serve(out...)
	return out
}
