package app

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/edgenode/edgenode/internal/testnet"
	"github.com/edgenode/edgenode/node"
	"github.com/edgenode/edgenode/node/core"
)

// benchPair is two nodes over libp2p QUIC on loopback, with synchronous
// writes (the default, unlike the tests), alice on A and bob on B, both
// joined to a public room of A's.
type benchPair struct {
	a, b       *App
	alice, bob node.Session
	roomID     string
}

// benchAppConfig is a benchmark app's configuration: synchronous writes,
// libp2p QUIC on loopback.
func benchAppConfig(dir string, peers []string) Config {
	cfg := loopbackConfig(dir, peers)
	cfg.Node.NoSyncWrites = false
	return cfg
}

func startBenchApp(b *testing.B, peers []string) *App {
	b.Helper()
	a, err := Start(context.Background(), benchAppConfig(b.TempDir(), peers))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = a.Close(ctx)
	})
	return a
}

func newBenchPair(b *testing.B) *benchPair {
	b.Helper()
	p := &benchPair{a: startBenchApp(b, nil)}
	p.b = startBenchApp(b, quicAddrs(p.a))
	ctx := context.Background()
	p.alice = testnet.Register(ctx, b, p.a.node, "alice")
	p.bob = testnet.Register(ctx, b, p.b.node, "bob")
	p.roomID = testnet.PublicRoom(ctx, b, p.a.node, p.alice.UserID)
	if status, body := testnet.Join(b, p.b.BaseURL(), p.bob.AccessToken, p.roomID, p.a.node.ServerName()); status != http.StatusOK {
		b.Fatalf("join: %d %v", status, body)
	}
	return p
}

func benchCall(b *testing.B, method, u, token, body string) (int, []byte) {
	b.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		b.Fatal(err)
	}
	return res.StatusCode, raw
}

// syncBody is the part of a /sync response the benchmarks read.
type syncBody struct {
	NextBatch string `json:"next_batch"`
	Rooms     struct {
		Join map[string]struct {
			Timeline struct {
				Events []struct {
					EventID string `json:"event_id"`
				} `json:"events"`
			} `json:"timeline"`
		} `json:"join"`
	} `json:"rooms"`
}

func (s *syncBody) has(roomID, eventID string) bool {
	for _, ev := range s.Rooms.Join[roomID].Timeline.Events {
		if ev.EventID == eventID {
			return true
		}
	}
	return false
}

// BenchmarkFederationLatency: alice's client sends a message on node A;
// bob's client holds a /sync long-poll on node B. One op is the time from
// the start of the send request to the long-poll's answer carrying the
// message: client API on A, room input with fsync, A's outbound queue,
// a /send transaction over libp2p QUIC, B's inbound checks and input with
// fsync, and B's wake-up of the long-poll. Reports the median and p95.
func BenchmarkFederationLatency(b *testing.B) {
	p := newBenchPair(b)
	syncURL := p.b.BaseURL() + "/_matrix/client/v3/sync?timeout=30000&since="
	var s syncBody
	testnet.Sync(context.Background(), b, p.b.BaseURL(), p.bob.AccessToken, nil, &s)
	since := s.NextBatch
	sendURL := p.a.BaseURL() + "/_matrix/client/v3/rooms/" + url.PathEscape(p.roomID) + "/send/m.room.message/"

	type synced struct {
		body syncBody
		err  error
	}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		got := make(chan synced, 1)
		poll := func(since string) {
			status, raw := benchCall(b, http.MethodGet, syncURL+url.QueryEscape(since), p.bob.AccessToken, "")
			var s syncBody
			err := json.Unmarshal(raw, &s)
			if status != http.StatusOK {
				err = fmt.Errorf("sync: %d %s", status, raw)
			}
			got <- synced{s, err}
		}
		go poll(since)
		start := time.Now()
		status, raw := benchCall(b, http.MethodPut, sendURL+fmt.Sprintf("lat%d", i), p.alice.AccessToken, `{"msgtype":"m.text","body":"ping"}`)
		if status != http.StatusOK {
			b.Fatalf("send: %d %s", status, raw)
		}
		var sent struct {
			EventID string `json:"event_id"`
		}
		if err := json.Unmarshal(raw, &sent); err != nil {
			b.Fatal(err)
		}
		for {
			r := <-got
			if r.err != nil {
				b.Fatal(r.err)
			}
			since = r.body.NextBatch
			if r.body.has(p.roomID, sent.EventID) {
				break
			}
			go poll(since) // woken by something else (a receipt, say)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "median-ms")
	b.ReportMetric(float64(lat[len(lat)*95/100].Microseconds())/1000, "p95-ms")
}

// BenchmarkFederationBurst1000: alice sends 1,000 messages on node A, one
// after another as fast as the node takes them; one op is the time from
// the first send until node B has the last, and then all of them are
// checked to be there. Reports events/s delivered.
func BenchmarkFederationBurst1000(b *testing.B) {
	const burst = 1000
	p := newBenchPair(b)
	ctx := context.Background()
	b.ResetTimer()
	for i := range b.N {
		l := p.b.node.Listen(p.bob.UserID)
		var last string
		for k := range burst {
			id := testnet.SendText(ctx, b, p.a.node, p.alice.UserID, p.alice.DeviceID, p.roomID, fmt.Sprintf("burst %d/%d", i, k))
			last = id
		}
		wctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		for !benchHasEvent(b, p.b, p.bob.UserID, p.roomID, last) {
			if !l.Wait(wctx) {
				b.Fatalf("the burst's last event did not reach B: %v", wctx.Err())
			}
		}
		cancel()
		l.Close()
		b.StopTimer()
		page, err := p.b.node.RoomEvents(ctx, p.bob.UserID, p.roomID, core.Range{Backwards: true, Limit: burst})
		if err != nil || len(page.Events) != burst {
			b.Fatalf("B has %d of the burst's events: %v", len(page.Events), err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(burst*b.N)/b.Elapsed().Seconds(), "events/s")
}

func benchHasEvent(b *testing.B, app *App, userID, roomID, eventID string) bool {
	b.Helper()
	page, err := app.node.RoomEvents(context.Background(), userID, roomID, core.Range{Backwards: true, Limit: 1})
	if err != nil {
		b.Fatal(err)
	}
	return len(page.Events) == 1 && page.Events[0].PDU.EventID() == eventID
}
