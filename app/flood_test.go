package app

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgenode/edgenode/internal/identity"
	"github.com/edgenode/edgenode/internal/testnet"
	"github.com/edgenode/edgenode/node/core"
	"github.com/matrix-org/gomatrixserverlib"
	"github.com/matrix-org/gomatrixserverlib/fclient"
	"github.com/matrix-org/gomatrixserverlib/spec"
)

// floodKind is one kind of hostile request M sends, with the answer A must
// give when M is not over its limits (over them, every kind is 429).
type floodKind struct {
	name    string
	status  int
	errcode string // "" for a 200
	build   func(txnID string) (*http.Request, error)
}

// hostile builds M's requests to A: signed as M with M's key unless the
// kind is about signatures.
type hostile struct {
	m, a   string // server names
	key    ed25519.PrivateKey
	forged json.RawMessage // a PDU for A's real room with a bad signature
}

func (h hostile) signed(origin string, key ed25519.PrivateKey, method, uri string, content any) (*http.Request, error) {
	fr := fclient.NewFederationRequest(method, spec.ServerName(origin), spec.ServerName(h.a), uri)
	if content != nil {
		if err := fr.SetContent(content); err != nil {
			return nil, err
		}
	}
	if err := fr.Sign(spec.ServerName(origin), identity.KeyID, key); err != nil {
		return nil, err
	}
	return fr.HTTPRequest()
}

func (h hostile) kinds() []floodKind {
	_, otherKey, _ := ed25519.GenerateKey(rand.Reader)
	other := identity.ServerNameForKey(otherKey.Public().(ed25519.PublicKey))
	send := func(txnID string) string { return "/_matrix/federation/v1/send/" + txnID }
	txn := func(pdus ...json.RawMessage) map[string]any {
		if pdus == nil {
			pdus = []json.RawMessage{}
		}
		return map[string]any{"origin": h.m, "origin_server_ts": time.Now().UnixMilli(), "pdus": pdus}
	}
	withBody := func(req *http.Request, body []byte) *http.Request {
		req.Body, req.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
		return req
	}
	return []floodKind{
		{"not JSON", http.StatusBadRequest, "M_NOT_JSON", func(id string) (*http.Request, error) {
			req, err := h.signed(h.m, h.key, "PUT", send(id), txn())
			if err != nil {
				return nil, err
			}
			return withBody(req, []byte(`{"origin": "`+h.m+`", "pdus": [`)), nil
		}},
		{"bad JSON", http.StatusBadRequest, "M_BAD_JSON", func(id string) (*http.Request, error) {
			return h.signed(h.m, h.key, "PUT", send(id), map[string]any{"origin": h.m, "pdus": 5})
		}},
		{"too many PDUs", http.StatusBadRequest, "M_BAD_JSON", func(id string) (*http.Request, error) {
			pdus := make([]json.RawMessage, 200)
			for i := range pdus {
				pdus[i] = json.RawMessage(`{}`)
			}
			return h.signed(h.m, h.key, "PUT", send(id), txn(pdus...))
		}},
		{"too large", http.StatusRequestEntityTooLarge, "M_TOO_LARGE", func(id string) (*http.Request, error) {
			req, err := h.signed(h.m, h.key, "PUT", send(id), txn())
			if err != nil {
				return nil, err
			}
			return withBody(req, bytes.Repeat([]byte(" "), 2<<20)), nil
		}},
		{"bad signature", http.StatusUnauthorized, "M_UNAUTHORIZED", func(id string) (*http.Request, error) {
			return h.signed(h.m, otherKey, "PUT", send(id), txn())
		}},
		{"garbage authorization", http.StatusUnauthorized, "M_UNAUTHORIZED", func(id string) (*http.Request, error) {
			req, err := h.signed(h.m, h.key, "PUT", send(id), txn())
			if err != nil {
				return nil, err
			}
			req.Header.Set("Authorization", `X-Matrix origin="`+strings.Repeat("x", 300)+`",key=,sig=`)
			return req, nil
		}},
		{"spoofed origin", http.StatusForbidden, "M_FORBIDDEN", func(id string) (*http.Request, error) {
			return h.signed(other, otherKey, "PUT", send(id), map[string]any{"origin": other, "pdus": []any{}})
		}},
		{"unknown room", http.StatusOK, "", func(id string) (*http.Request, error) {
			pdu := fmt.Sprintf(`{"room_id":"!nope%s:%s","type":"m.room.message","sender":"@m:%s","content":{},"prev_events":[],"auth_events":[],"depth":1}`, id, h.m, h.m)
			return h.signed(h.m, h.key, "PUT", send(id), txn(json.RawMessage(pdu), json.RawMessage(`[1]`), json.RawMessage(`null`)))
		}},
		{"forged PDU", http.StatusOK, "", func(id string) (*http.Request, error) {
			return h.signed(h.m, h.key, "PUT", send(id), txn(h.forged))
		}},
	}
}

// floodStats is what M saw.
type floodStats struct {
	mu        sync.Mutex
	sent      int
	limited   int // 429 M_LIMIT_EXCEEDED with retry_after_ms
	transport int // transport errors (A may close a connection after a 413)
	wrong     []string
}

// TestFloodFromOnePeer: M, a real libp2p peer with its own key, floods A
// with malformed and hostile transactions from eight goroutines (as many
// as it may have in flight, so it also meets the concurrency limit) while
// B's user sends messages into A's room. A answers M with 4xx only (and 200
// for well-formed transactions of bad PDUs), M gets 429 M_LIMIT_EXCEEDED
// once over its rate, every one of B's messages arrives at A, and A still
// serves B and its own users afterwards.
func TestFloodFromOnePeer(t *testing.T) {
	const messages, flooders, minFlood = 10, 8, 300
	a, b := startPair(t)
	m := startP2P(t, quicAddrs(a))
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()

	r := sharedRoom(ctx, t, a, b)
	alice, bob, roomID := r.alice, r.bob, r.roomID

	h := hostile{m: m.node.ServerName(), a: a.node.ServerName(), key: m.node.SigningKey(), forged: forgedPDU(ctx, t, a, roomID, alice.UserID, b.node.ServerName())}
	kinds := h.kinds()
	client := &http.Client{Transport: m.p2p.RoundTripper(), Timeout: 30 * time.Second}
	var stats floodStats
	var txnSeq atomic.Int64
	stop := make(chan struct{})
	started := make(chan struct{})
	var startOnce sync.Once
	var wg sync.WaitGroup
	for g := range flooders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g; ; i++ {
				select {
				case <-stop:
					return
				case <-ctx.Done():
					return
				default:
				}
				k := kinds[i%len(kinds)]
				floodOnce(ctx, client, k, fmt.Sprintf("flood%d", txnSeq.Add(1)), &stats)
				if i-g >= 2*len(kinds) {
					startOnce.Do(func() { close(started) })
				}
			}
		}()
	}
	stopFlood := sync.OnceFunc(func() {
		close(stop)
		wg.Wait()
	})
	defer stopFlood()
	select {
	case <-started:
	case <-ctx.Done():
		t.Fatal("flood did not start")
	}

	// B's user talks while M floods: half the messages at once, then the
	// rest one by one, each awaited at A.
	var sent []string
	for i := range messages {
		id := testnet.SendText(ctx, t, b.node, bob.UserID, bob.DeviceID, roomID, fmt.Sprintf("honest %d", i))
		sent = append(sent, id)
		if i >= messages/2 {
			waitForEvent(ctx, t, a, alice.UserID, roomID, id)
		}
	}
	if _, err := b.federation.QueryProfile(ctx, a.node.ServerName(), alice.UserID, ""); err != nil {
		t.Fatalf("B's request to A during the flood: %v", err)
	}
	for _, id := range sent {
		waitForEvent(ctx, t, a, alice.UserID, roomID, id)
	}
	// M keeps flooding until it has sent minFlood requests and been told
	// to slow down.
	for {
		stats.mu.Lock()
		limited, total := stats.limited, stats.sent
		stats.mu.Unlock()
		if limited > 0 && total >= minFlood {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("M sent %d requests, %d refused with 429 M_LIMIT_EXCEEDED: %v", total, limited, ctx.Err())
		}
		floodOnce(ctx, client, kinds[1], fmt.Sprintf("flood%d", txnSeq.Add(1)), &stats)
	}
	stopFlood()

	stats.mu.Lock()
	t.Logf("M sent %d requests: %d refused with 429, %d transport errors", stats.sent, stats.limited, stats.transport)
	for _, w := range stats.wrong {
		t.Error(w)
	}
	stats.mu.Unlock()

	// A is still well: it serves its own user and B.
	fromAlice := testnet.SendText(ctx, t, a.node, alice.UserID, "", roomID, "still here")
	waitForEvent(ctx, t, b, bob.UserID, roomID, fromAlice)
	res, err := http.Get(a.BaseURL() + "/_matrix/client/versions")
	if err != nil {
		t.Fatalf("A's client API after the flood: %v", err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("A's client API after the flood: %d", res.StatusCode)
	}
}

// floodOnce sends one hostile request and checks A's answer.
func floodOnce(ctx context.Context, client *http.Client, k floodKind, txnID string, stats *floodStats) {
	req, err := k.build(txnID)
	if err != nil {
		stats.mu.Lock()
		stats.wrong = append(stats.wrong, fmt.Sprintf("%s: building: %v", k.name, err))
		stats.mu.Unlock()
		return
	}
	res, err := client.Do(req.WithContext(ctx))
	stats.mu.Lock()
	defer stats.mu.Unlock()
	stats.sent++
	if err != nil {
		if ctx.Err() == nil {
			stats.transport++
		}
		return
	}
	defer res.Body.Close()
	var body struct {
		Errcode    string `json:"errcode"`
		RetryAfter int64  `json:"retry_after_ms"`
	}
	raw, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	_ = json.Unmarshal(raw, &body)
	switch {
	case res.StatusCode == http.StatusTooManyRequests && body.Errcode == "M_LIMIT_EXCEEDED" && body.RetryAfter > 0:
		stats.limited++
	case res.StatusCode == k.status && body.Errcode == k.errcode:
	default:
		if len(stats.wrong) < 20 {
			stats.wrong = append(stats.wrong, fmt.Sprintf("%s: A answered %d %s, want %d %q or 429", k.name, res.StatusCode, raw, k.status, k.errcode))
		}
	}
}

// forgedPDU is a message for A's room that claims to come from a user of
// B's server but is signed with another key: A must refuse it (per PDU).
func forgedPDU(ctx context.Context, t *testing.T, a *App, roomID, viewer, bName string) json.RawMessage {
	t.Helper()
	page, err := a.node.RoomEvents(ctx, viewer, roomID, core.Range{Backwards: true, Limit: 1})
	if err != nil || len(page.Events) == 0 {
		t.Fatalf("room events: %v", err)
	}
	latest := page.Events[0].PDU
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	proto := gomatrixserverlib.ProtoEvent{SenderID: "@evil:" + bName, RoomID: roomID, Type: "m.room.message",
		PrevEvents: []string{latest.EventID()}, AuthEvents: latest.AuthEventIDs(), Depth: latest.Depth() + 1,
		Content: spec.RawJSON(`{"msgtype":"m.text","body":"forged"}`)}
	verImpl, err := gomatrixserverlib.GetRoomVersion(latest.Version())
	if err != nil {
		t.Fatal(err)
	}
	ev := testnet.SignPDU(t, verImpl, proto, time.Now(), bName, key)
	return ev.JSON()
}
