package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgenode/edgenode/internal/testnet"
	"github.com/edgenode/edgenode/node/core"
	"github.com/matrix-org/gomatrixserverlib"
	"github.com/matrix-org/gomatrixserverlib/spec"
)

// identityFlood is fresh libp2p identities, each its own node with its own
// key and none in a room with A, sending transactions of signed messages
// into A's room (each refused by auth) as fast as they can.
type identityFlood struct {
	ok, limited, other atomic.Int64
	wrong              sync.Map // first unexpected answers, for the log
}

// floodIdentities starts n fresh identities connected to a and has each
// send txns transactions of perTxn messages into roomID, from 4 goroutines
// per identity, without waiting on a 429 (as fast as they can). It
// returns once every identity is connected and its transactions are
// built; start releases them and done reports when all have been sent.
func floodIdentities(tb testing.TB, a *App, roomID string, latest gomatrixserverlib.PDU, n, txns, perTxn int) (f *identityFlood, start func(), done <-chan struct{}) {
	tb.Helper()
	f = &identityFlood{}
	verImpl, err := gomatrixserverlib.GetRoomVersion(latest.Version())
	if err != nil {
		tb.Fatal(err)
	}
	gate := make(chan struct{})
	fin := make(chan struct{})
	var wg sync.WaitGroup
	for id := range n {
		var m *App
		if t, ok := tb.(*testing.T); ok {
			m = startP2P(t, quicAddrs(a))
		} else {
			m = startBenchApp(tb.(*testing.B), quicAddrs(a))
		}
		h := hostile{m: m.node.ServerName(), a: a.node.ServerName(), key: m.node.SigningKey()}
		bodies := make([][]byte, txns)
		for k := range bodies {
			pdus := make([]json.RawMessage, perTxn)
			for i := range pdus {
				proto := gomatrixserverlib.ProtoEvent{SenderID: "@flood:" + h.m, RoomID: roomID, Type: "m.room.message",
					PrevEvents: []string{latest.EventID()}, AuthEvents: latest.AuthEventIDs(), Depth: latest.Depth() + 1,
					Content: spec.RawJSON(fmt.Sprintf(`{"msgtype":"m.text","body":"%d.%d.%d %s"}`, id, k, i, strings.Repeat("f", 500)))}
				ev := testnet.SignPDU(tb, verImpl, proto, time.Now(), h.m, h.key)
				pdus[i] = ev.JSON()
			}
			bodies[k], _ = json.Marshal(pdus)
		}
		// Signed before the flood starts: the flooders share the process
		// (and its two cores) with A, so they do as little as they can.
		reqs := make([]signedReq, txns)
		for k, pdus := range bodies {
			req, err := h.signed(h.m, h.key, "PUT", fmt.Sprintf("/_matrix/federation/v1/send/flood%d", k),
				map[string]any{"origin": h.m, "origin_server_ts": time.Now().UnixMilli(), "pdus": json.RawMessage(pdus)})
			if err != nil {
				tb.Fatal(err)
			}
			body, err := io.ReadAll(req.Body)
			if err != nil {
				tb.Fatal(err)
			}
			reqs[k] = signedReq{url: req.URL.String(), header: req.Header, body: body}
		}
		client := &http.Client{Transport: m.p2p.RoundTripper(), Timeout: time.Minute}
		var next atomic.Int64
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-gate
				for k := int(next.Add(1)) - 1; k < txns; k = int(next.Add(1)) - 1 {
					f.send(client, reqs[k])
				}
			}()
		}
	}
	go func() { wg.Wait(); close(fin) }()
	return f, sync.OnceFunc(func() { close(gate) }), fin
}

// signedReq is a request signed ahead of time.
type signedReq struct {
	url    string
	header http.Header
	body   []byte
}

func (f *identityFlood) send(client *http.Client, sr signedReq) {
	req, err := http.NewRequest(http.MethodPut, sr.url, bytes.NewReader(sr.body))
	if err != nil {
		f.wrong.LoadOrStore(err.Error(), true)
		f.other.Add(1)
		return
	}
	req.Header = sr.header.Clone()
	res, err := client.Do(req)
	if err != nil {
		f.wrong.LoadOrStore(err.Error(), true)
		f.other.Add(1)
		return
	}
	raw, _ := io.ReadAll(res.Body)
	res.Body.Close()
	var body struct {
		Errcode    string `json:"errcode"`
		RetryAfter int64  `json:"retry_after_ms"`
	}
	_ = json.Unmarshal(raw, &body)
	switch {
	case res.StatusCode == http.StatusOK:
		f.ok.Add(1)
	case res.StatusCode == http.StatusTooManyRequests && body.Errcode == "M_LIMIT_EXCEEDED" && body.RetryAfter > 0:
		f.limited.Add(1)
	default:
		f.wrong.LoadOrStore(fmt.Sprintf("%d %.200s", res.StatusCode, raw), true)
		f.other.Add(1)
	}
}

// latestEvent is the newest event of roomID that viewer sees on app.
func latestEvent(ctx context.Context, tb testing.TB, app *App, viewer, roomID string) gomatrixserverlib.PDU {
	tb.Helper()
	page, err := app.node.RoomEvents(ctx, viewer, roomID, core.Range{Backwards: true, Limit: 1})
	if err != nil || len(page.Events) == 0 {
		tb.Fatalf("room events: %v", err)
	}
	return page.Events[0].PDU
}

// TestHostileFreshIdentities: four fresh identities (real libp2p peers,
// each with its own key, none in a room with A), each within its own
// per-peer limits, flood A with transactions as fast as they can while
// B, which shares a room with A's alice, talks in it. Together they are
// held to the strangers' slice of A's global budget: 429 M_LIMIT_EXCEEDED
// with retry_after_ms once over it. Every one of B's messages arrives at
// A, and alice can still send to B.
func TestHostileFreshIdentities(t *testing.T) {
	const identities, txns, perTxn, messages = 4, 60, 10, 10
	a, b := startPair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	r := sharedRoom(ctx, t, a, b)
	f, start, done := floodIdentities(t, a, r.roomID, latestEvent(ctx, t, a, r.alice.UserID, r.roomID), identities, txns, perTxn)
	start()
	var sent []string
	for i := range messages {
		id := testnet.SendText(ctx, t, b.node, r.bob.UserID, r.bob.DeviceID, r.roomID, fmt.Sprintf("honest %d", i))
		sent = append(sent, id)
	}
	for _, id := range sent {
		waitForEvent(ctx, t, a, r.alice.UserID, r.roomID, id)
	}
	select {
	case <-done:
	case <-ctx.Done():
		t.Fatal("the flood did not end")
	}
	t.Logf("fresh identities: %d transactions answered 200, %d 429 M_LIMIT_EXCEEDED, %d otherwise", f.ok.Load(), f.limited.Load(), f.other.Load())
	f.wrong.Range(func(k, _ any) bool { t.Errorf("unexpected answer to a stranger: %v", k); return true })
	if f.limited.Load() == 0 {
		t.Errorf("%d transactions from %d fresh identities were all taken in: no global budget", f.ok.Load(), identities)
	}
	fromAlice := testnet.SendText(ctx, t, a.node, r.alice.UserID, "", r.roomID, "still here")
	waitForEvent(ctx, t, b, r.bob.UserID, r.roomID, fromAlice)
}

// BenchmarkHostileFlood: 10 fresh identities (real libp2p peers with their
// own keys, in no room with A) each send 150 transactions of 10 signed
// ~0.6 KB messages into A's room, as fast as they can, not waiting on a
// 429. Meanwhile alice's client on A runs /sync (timeout=0, from its
// latest token) back to back, and bob on B, which shares the room, sends a
// message every 100 ms. Reports alice's /sync p95 and median, the delivery
// latency of bob's messages to A (send on B to stored on A, p95 and max),
// how long the measuring window lasted and how the flood was answered.
//
// identities=0 is the same without the flood (for 5 s), to compare with.
func BenchmarkHostileFlood(b *testing.B) {
	for _, n := range []int{0, 10} {
		b.Run(fmt.Sprintf("identities=%d", n), func(b *testing.B) { benchHostileFlood(b, n) })
	}
}

func benchHostileFlood(b *testing.B, identities int) {
	const txns, perTxn, minWindow = 150, 10, 5 * time.Second
	for range b.N {
		p := newBenchPair(b)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		// A knows bob joined once his join is in alice's timeline.
		mi, err := p.b.node.Membership(ctx, p.roomID, p.bob.UserID)
		if err != nil {
			b.Fatal(err)
		}
		for !benchHasEvent(b, p.a, p.alice.UserID, p.roomID, mi.EventID) {
			l := p.a.node.Listen(p.alice.UserID)
			l.Wait(ctx)
			l.Close()
			if ctx.Err() != nil {
				b.Fatal("bob's join did not reach A")
			}
		}
		f, start, done := floodIdentities(b, p.a, p.roomID, latestEvent(ctx, b, p.a, p.alice.UserID, p.roomID), identities, txns, perTxn)

		var s syncBody
		testnet.Sync(context.Background(), b, p.a.BaseURL(), p.alice.AccessToken, nil, &s)
		since := s.NextBatch

		b.ResetTimer()
		floodStart := time.Now()
		start()
		var floodTook time.Duration
		flooding := true
		var syncLat, delivery []time.Duration
		sendURL := p.b.BaseURL() + "/_matrix/client/v3/rooms/" + url.PathEscape(p.roomID) + "/send/m.room.message/"
		type pending struct {
			id   string
			sent time.Time
		}
		var waiting []pending
		nextSend := time.Now()
		seq := 0
		for flooding || len(waiting) > 0 {
			select {
			case <-done:
				if flooding && time.Since(floodStart) >= minWindow {
					floodTook, flooding = time.Since(floodStart), false
				}
			default:
			}
			if ctx.Err() != nil {
				b.Fatalf("bob's messages did not all arrive: %d waiting", len(waiting))
			}
			if flooding && time.Now().After(nextSend) {
				t0 := time.Now()
				status, raw := benchCall(b, http.MethodPut, sendURL+fmt.Sprintf("b%d", seq), p.bob.AccessToken, `{"msgtype":"m.text","body":"honest"}`)
				seq++
				if status != http.StatusOK {
					b.Fatalf("bob's send: %d %s", status, raw)
				}
				var sent struct {
					EventID string `json:"event_id"`
				}
				_ = json.Unmarshal(raw, &sent)
				waiting = append(waiting, pending{sent.EventID, t0})
				nextSend = t0.Add(100 * time.Millisecond)
			}
			timeout := "0" // measured: answered at once
			if !flooding {
				timeout = "5000" // the rest of bob's messages: a long-poll
			}
			t0 := time.Now()
			status, raw := benchCall(b, http.MethodGet, p.a.BaseURL()+"/_matrix/client/v3/sync?timeout="+timeout+"&since="+url.QueryEscape(since), p.alice.AccessToken, "")
			if status != http.StatusOK {
				b.Fatalf("sync: %d %s", status, raw)
			}
			took := time.Since(t0)
			if flooding {
				syncLat = append(syncLat, took)
			}
			var s syncBody
			if err := json.Unmarshal(raw, &s); err != nil {
				b.Fatal(err)
			}
			since = s.NextBatch
			kept := waiting[:0]
			for _, w := range waiting {
				if s.has(p.roomID, w.id) {
					delivery = append(delivery, time.Since(w.sent))
				} else {
					kept = append(kept, w)
				}
			}
			waiting = kept
		}
		b.StopTimer()
		cancel()
		slices.Sort(syncLat)
		slices.Sort(delivery)
		ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
		b.ReportMetric(ms(syncLat[len(syncLat)*95/100]), "sync-p95-ms")
		b.ReportMetric(ms(syncLat[len(syncLat)/2]), "sync-median-ms")
		b.ReportMetric(float64(len(syncLat)), "syncs")
		if len(delivery) > 0 {
			b.ReportMetric(ms(delivery[len(delivery)*95/100]), "peer-delivery-p95-ms")
			b.ReportMetric(ms(delivery[len(delivery)-1]), "peer-delivery-max-ms")
		}
		b.ReportMetric(float64(len(delivery)), "peer-msgs")
		b.ReportMetric(floodTook.Seconds(), "window-s")
		b.ReportMetric(float64(f.ok.Load()), "flood-200")
		b.ReportMetric(float64(f.limited.Load()), "flood-429")
		b.ReportMetric(float64(f.other.Load()), "flood-other")
	}
}
