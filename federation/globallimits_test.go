package federation

import (
	"context"
	"log/slog"
	"testing"
	"time"
)

// fakeShared is a settable set of peers sharing rooms.
type fakeShared struct {
	set   map[string]bool
	gen   uint64
	reads int
}

func (f *fakeShared) SharedServers(context.Context) (map[string]bool, error) {
	f.reads++
	out := map[string]bool{}
	for k, v := range f.set {
		out[k] = v
	}
	return out, nil
}

func (f *fakeShared) SharedServersGen() uint64 { return f.gen }

func TestGlobalLimiter(t *testing.T) {
	tests := []struct {
		name   string
		lim    GlobalLimits
		shared []string // peers that share a room
		steps  []limitStep
	}{
		{
			name:   "strangers share a slice of the concurrency; members the rest",
			lim:    GlobalLimits{MaxInFlight: 10, Rate: 1000, Burst: 1000, StrangerShare: 0.2},
			shared: []string{"m"},
			steps: []limitStep{
				{peer: "s1", hold: "s1", want: true},
				{peer: "s2", hold: "s2", want: true},
				{peer: "s3", want: false}, // a fresh identity gets nothing more
				{peer: "m", hold: "m1", want: true},
				{peer: "m", hold: "m2", want: true},
				{release: "s1"},
				{peer: "s3", hold: "s3", want: true},
			},
		},
		{
			name:   "the global concurrency holds members too",
			lim:    GlobalLimits{MaxInFlight: 3, Rate: 1000, Burst: 1000, StrangerShare: 0.1},
			shared: []string{"m"},
			steps: []limitStep{
				{peer: "m", hold: "m1", want: true},
				{peer: "m", hold: "m2", want: true},
				{peer: "s", hold: "s", want: true}, // at least two for strangers; one left
				{peer: "m", want: false},
				{release: "m1"},
				{peer: "m", want: true},
			},
		},
		{
			name:   "strangers' rate is a slice of the global rate",
			lim:    GlobalLimits{MaxInFlight: 100, Rate: 100, Burst: 20, StrangerShare: 0.1},
			shared: []string{"m"},
			steps: []limitStep{
				{peer: "s1", want: true},
				{peer: "s2", want: true},
				{peer: "s3", want: false, wantRetry: 100}, // 10/s for all strangers
				{peer: "m", want: true},
				{advance: 100 * time.Millisecond, peer: "s4", want: true},
				{peer: "s4", want: false},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
			shared := &fakeShared{set: map[string]bool{}}
			for _, p := range tt.shared {
				shared.set[p] = true
			}
			g := newGlobalLimiter(tt.lim, slog.New(slog.DiscardHandler), clock.now, shared)
			runLimitSteps(t, clock, tt.steps, g.admit, nil)
		})
	}
}

// TestGlobalLimiterSharedRefresh: the set of peers sharing rooms is read
// once, again only when membership changed (and not more often than
// RefreshEvery), so a peer that joins gets priority soon, and a flood of
// strangers does not make the node read it on every request.
func TestGlobalLimiterSharedRefresh(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	shared := &fakeShared{set: map[string]bool{}}
	g := newGlobalLimiter(GlobalLimits{MaxInFlight: 100, Rate: 1e6, Burst: 1e6, StrangerShare: 0.02, RefreshEvery: time.Second},
		slog.New(slog.DiscardHandler), clock.now, shared)
	hold := func(peer string) (func(), bool) {
		release, err := g.admit(peer)
		return release, err == nil
	}
	// Two stranger slots: a third request of b, a stranger, is refused.
	r1, _ := hold("x")
	r2, _ := hold("y")
	if _, ok := hold("b"); ok {
		t.Fatal("b admitted beyond the strangers' slots")
	}
	for range 100 {
		hold("z")
	}
	if shared.reads != 1 {
		t.Fatalf("set read %d times without a membership change, want 1", shared.reads)
	}
	shared.set["b"], shared.gen = true, 1 // b joins a room
	if _, ok := hold("b"); ok {
		t.Fatal("the set was read again sooner than RefreshEvery")
	}
	clock.t = clock.t.Add(time.Second)
	if _, ok := hold("b"); !ok {
		t.Fatal("b, now in a room, is still a stranger")
	}
	if shared.reads != 2 {
		t.Fatalf("set read %d times, want 2", shared.reads)
	}
	r1()
	r2()
}
