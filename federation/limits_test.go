package federation

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgenode/edgenode/internal/mxhttp"
	"github.com/edgenode/edgenode/internal/testnet"
)

// fakeClock is a settable clock for the limiter.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

// limitStep is one action on a limiter: advance the clock, then either
// admit a request from peer (want says whether it gets in) or release the
// request held under hold.
type limitStep struct {
	advance time.Duration
	peer    string
	hold    string // name the admitted request is held under; release it later
	release string // release the request held under this name instead
	want    bool
	// wantRetry, when set, is the retry_after_ms a refusal must carry.
	wantRetry int64
	// tracked, when >= 0, is how many peers the limiter must track after.
	tracked int
}

func TestPeerLimiter(t *testing.T) {
	tests := []struct {
		name  string
		lim   Limits
		steps []limitStep
	}{
		{
			name: "concurrency cap per peer",
			lim:  Limits{MaxInFlight: 2, Rate: 1000, Burst: 1000},
			steps: []limitStep{
				{peer: "a", hold: "a1", want: true, tracked: -1},
				{peer: "a", hold: "a2", want: true, tracked: -1},
				{peer: "a", want: false, tracked: -1},
				{peer: "b", hold: "b1", want: true, tracked: -1}, // another peer is not affected
				{release: "a1", tracked: -1},
				{peer: "a", hold: "a3", want: true, tracked: -1},
				{peer: "a", want: false, tracked: 2},
			},
		},
		{
			name: "token bucket refills at the rate",
			lim:  Limits{MaxInFlight: 100, Rate: 2, Burst: 3},
			steps: []limitStep{
				{peer: "a", want: true, tracked: -1},
				{peer: "a", want: true, tracked: -1},
				{peer: "a", want: true, tracked: -1},
				{peer: "a", want: false, wantRetry: 500, tracked: -1},
				{advance: 250 * time.Millisecond, peer: "a", want: false, wantRetry: 250, tracked: -1},
				{advance: 250 * time.Millisecond, peer: "a", want: true, tracked: -1},
				{peer: "a", want: false, tracked: -1},
				{advance: 10 * time.Second, peer: "a", want: true, tracked: -1}, // refilled to the burst, no more
				{peer: "a", want: true, tracked: -1},
				{peer: "a", want: true, tracked: -1},
				{peer: "a", want: false, tracked: -1},
			},
		},
		{
			name: "peer map is bounded: the idle peer seen longest ago goes",
			lim:  Limits{MaxInFlight: 1, Rate: 1, Burst: 1, MaxPeers: 3, IdleAfter: time.Hour},
			steps: []limitStep{
				{peer: "a", want: true, tracked: 1},
				{advance: time.Second, peer: "b", hold: "b", want: true, tracked: 2},
				{advance: time.Second, peer: "c", hold: "c", want: true, tracked: 3},
				{advance: time.Second, peer: "d", hold: "d", want: true, tracked: 3}, // a (idle, oldest) evicted
				{peer: "a", want: false, wantRetry: 1000, tracked: 3},                // all three busy: refused, not tracked
				{release: "c", tracked: 3},
				{peer: "a", want: true, tracked: 3}, // c evicted; a starts afresh
				{peer: "b", want: false, tracked: 3},
			},
		},
		{
			name: "idle peers are swept",
			lim:  Limits{MaxInFlight: 1, Rate: 1, Burst: 1, MaxPeers: 100, IdleAfter: time.Minute},
			steps: []limitStep{
				{peer: "a", want: true, tracked: -1},
				{peer: "b", hold: "b", want: true, tracked: -1},
				{peer: "c", want: true, tracked: 3},
				{advance: 2 * time.Minute, peer: "d", want: true, tracked: 2}, // a and c forgotten; b is in flight
				{release: "b", tracked: 2},
				{advance: 2 * time.Minute, peer: "a", want: true, tracked: 1},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
			l := newPeerLimiter(tt.lim, slog.New(slog.DiscardHandler), clock.now)
			runLimitSteps(t, clock, tt.steps, l.admit, l.tracked)
		})
	}
}

// runLimitSteps plays steps against admit, moving clock on as each says
// (tracked, when not nil, counts the peers the limiter holds state for).
func runLimitSteps(t *testing.T, clock *fakeClock, steps []limitStep, admit func(peer string) (func(), error), tracked func() int) {
	t.Helper()
	held := map[string]func(){}
	for i, s := range steps {
		clock.t = clock.t.Add(s.advance)
		if s.release != "" {
			held[s.release]()
			delete(held, s.release)
		} else {
			release, err := admit(s.peer)
			if got := err == nil; got != s.want {
				t.Fatalf("step %d: peer %s admitted = %v (%v), want %v", i, s.peer, got, err, s.want)
			}
			if err != nil {
				checkLimitExceeded(t, fmt.Sprintf("step %d", i), err, s.wantRetry)
			} else if s.hold != "" {
				held[s.hold] = release
			} else {
				release()
				release() // twice is harmless
			}
		}
		if tracked != nil && s.tracked >= 0 && tracked() != s.tracked {
			t.Fatalf("step %d: %d peers tracked, want %d", i, tracked(), s.tracked)
		}
	}
}

func checkLimitExceeded(t *testing.T, what string, err error, wantRetry int64) {
	t.Helper()
	var me *mxhttp.Error
	if !errors.As(err, &me) || me.Status != http.StatusTooManyRequests || me.Code != "M_LIMIT_EXCEEDED" {
		t.Fatalf("%s: %v, want 429 M_LIMIT_EXCEEDED", what, err)
	}
	ms, _ := me.Extra["retry_after_ms"].(int64)
	if ms <= 0 || (wantRetry > 0 && ms != wantRetry) {
		t.Fatalf("%s: retry_after_ms = %v, want %d", what, me.Extra["retry_after_ms"], wantRetry)
	}
}

// countingHandler counts log records at warn and above.
type countingHandler struct{ warns atomic.Int64 }

func (h *countingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *countingHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn {
		h.warns.Add(1)
	}
	return nil
}
func (h *countingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *countingHandler) WithGroup(string) slog.Handler      { return h }

// TestPeerLimiterLogsOncePerBurst: a flood of refused requests is one log
// line, then at most one a minute, and a new burst after a quiet spell is
// logged again.
func TestPeerLimiterLogsOncePerBurst(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	h := &countingHandler{}
	l := newPeerLimiter(Limits{Rate: 1, Burst: 1}, slog.New(h), clock.now)
	flood := func(n int) {
		for range n {
			if release, err := l.admit("m"); err == nil {
				release()
			}
			clock.t = clock.t.Add(10 * time.Millisecond)
		}
	}
	flood(1000) // 10 s: ~10 admitted, ~990 refused
	if got := h.warns.Load(); got != 1 {
		t.Fatalf("%d warnings for one burst, want 1", got)
	}
	clock.t = clock.t.Add(limitLogEvery)
	flood(1000)
	if got := h.warns.Load(); got != 2 {
		t.Fatalf("%d warnings after a minute, want 2", got)
	}
}

// TestHandlerLimits: the limits apply before authentication (unsigned
// requests from a flooding peer turn from 401 into 429), per peer, over
// HTTP with the spec's body; a request with no transport peer is 403 on
// authenticated endpoints and served on the open ones.
func TestHandlerLimits(t *testing.T) {
	p := newPair(t)
	a := p.a
	srv := httptest.NewServer(NewHandlerWithOptions(a.n, a.peerOf, HandlerOptions{Limits: Limits{Rate: 0.001, Burst: 3}}))
	defer srv.Close()
	get := func(path string) result {
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		return do(t, req)
	}
	for i := range 3 {
		expect(t, fmt.Sprintf("unsigned %d", i), get(profileURI(p.alice)), http.StatusUnauthorized, "M_UNAUTHORIZED")
	}
	r := get(profileURI(p.alice))
	expect(t, "over the burst", r, http.StatusTooManyRequests, "M_LIMIT_EXCEEDED")
	if ms, _ := r.body["retry_after_ms"].(float64); ms <= 0 {
		t.Fatalf("429 without retry_after_ms: %v", r.body)
	}
	expect(t, "open endpoint, same peer", get(versionPath), http.StatusTooManyRequests, "M_LIMIT_EXCEEDED")

	// Another peer has its own bucket.
	a.setPeer(a.name()+"x", true)
	expect(t, "other peer", get(profileURI(p.alice)), http.StatusUnauthorized, "M_UNAUTHORIZED")

	// No transport peer.
	a.setPeer("", false)
	expect(t, "no peer", get(profileURI(p.alice)), http.StatusForbidden, "M_FORBIDDEN")
	if r := get(versionPath); r.status != http.StatusOK {
		t.Fatalf("version without a peer: %d %v", r.status, r.body)
	}
	res, err := http.Get(srv.URL + keyServerPath)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("key server without a peer: %d", res.StatusCode)
	}
}

// recordingHandler keeps the messages and attributes of log records.
type recordingHandler struct {
	mu      sync.Mutex
	records []map[string]string
}

func (h *recordingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *recordingHandler) Handle(_ context.Context, r slog.Record) error {
	m := map[string]string{"msg": r.Message, "level": r.Level.String()}
	r.Attrs(func(a slog.Attr) bool { m[a.Key] = a.Value.String(); return true })
	h.mu.Lock()
	defer h.mu.Unlock()
	h.records = append(h.records, m)
	return nil
}
func (h *recordingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *recordingHandler) WithGroup(string) slog.Handler      { return h }

// TestRefusalsLogged: malformed and badly signed requests are answered with
// the spec's errors and logged at debug with the peer they came from.
func TestRefusalsLogged(t *testing.T) {
	rec := &recordingHandler{}
	cfg := testnet.NodeConfig(t.TempDir())
	cfg.Logger = slog.New(rec)
	n := testnet.OpenNode(t, cfg)
	b := newFedServer(t)
	a := &fedServer{n: n}
	a.setPeer(b.name(), true)
	a.srv = httptest.NewServer(NewHandler(n, a.peerOf))
	t.Cleanup(a.srv.Close)
	_, otherKey, _ := ed25519.GenerateKey(rand.Reader)

	send := "/_matrix/federation/v1/send/t1"
	notJSON := signed(t, a, b.name(), a.name(), b.n.SigningKey(), "PUT", send, map[string]any{})
	notJSON.Body, notJSON.ContentLength = io.NopCloser(strings.NewReader("{")), 1
	for _, c := range []struct {
		name    string
		req     *http.Request
		status  int
		errcode string
	}{
		{"not JSON", notJSON, http.StatusBadRequest, "M_NOT_JSON"},
		{"bad JSON", signed(t, a, b.name(), a.name(), b.n.SigningKey(), "PUT", send, map[string]any{"pdus": 1}), http.StatusBadRequest, "M_BAD_JSON"},
		{"bad signature", signed(t, a, b.name(), a.name(), otherKey, "PUT", send, map[string]any{}), http.StatusUnauthorized, "M_UNAUTHORIZED"},
	} {
		before := len(rec.snapshot())
		expect(t, c.name, do(t, c.req), c.status, c.errcode)
		var found bool
		for _, r := range rec.snapshot()[before:] {
			if r["msg"] == "federation request refused" && r["level"] == "DEBUG" && r["peer"] == b.name() && r["errcode"] == c.errcode {
				found = true
			}
		}
		if !found {
			t.Errorf("%s: no debug log naming the peer and %s: %v", c.name, c.errcode, rec.snapshot()[before:])
		}
	}
}

func (h *recordingHandler) snapshot() []map[string]string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]map[string]string(nil), h.records...)
}
