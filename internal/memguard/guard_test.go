package memguard

import (
	"io"
	"log/slog"
	"math"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync/atomic"
	"testing"
	"time"
)

const mib = 1 << 20

// TestDecide: the guard's rule after a collection, as a table.
func TestDecide(t *testing.T) {
	tests := []struct {
		name                       string
		r                          reading
		canTrim, trimmed, canLower bool
		want                       action
		wantLimit                  int64
	}{
		{name: "no limit", r: reading{live: 40 * mib, goal: 40 * mib, limit: math.MaxInt64}, canTrim: true, want: none},
		{name: "room to spare", r: reading{live: 20 * mib, goal: 40 * mib, limit: 52 * mib, nonHeap: 8 * mib}, canTrim: true, canLower: true, want: none},
		{name: "just enough room", r: reading{live: 32 * mib, goal: 40 * mib, limit: 52 * mib}, canTrim: true, want: none},
		{name: "tight: trim first", r: reading{live: 37 * mib, goal: 37 * mib, limit: 52 * mib}, canTrim: true, want: trim},
		{name: "tight right after a trim: wait", r: reading{live: 37 * mib, goal: 37 * mib, limit: 52 * mib}, trimmed: true, want: waitTrim},
		{name: "still tight, no trim allowed: raise to 1.5 x 37 + 8 MiB, rounded up", r: reading{live: 37 * mib, goal: 37 * mib, limit: 52 * mib, nonHeap: 8 * mib}, want: raise, wantLimit: 64 * mib},
		{name: "tight under a high limit: raise by a MiB at least", r: reading{live: 37 * mib, goal: 37 * mib, limit: 80 * mib}, want: raise, wantLimit: 81 * mib},
		{name: "raised, the heap small again: back to the base", r: reading{live: 20 * mib, goal: 40 * mib, limit: 80 * mib, nonHeap: 8 * mib}, canLower: true, want: lower, wantLimit: 52 * mib},
		{name: "raised, the heap smaller: lower to what it needs", r: reading{live: 40 * mib, goal: 80 * mib, limit: 100 * mib, nonHeap: 8 * mib}, canLower: true, want: lower, wantLimit: 68 * mib},
		{name: "raised, the heap smaller, but raised lately: keep", r: reading{live: 20 * mib, goal: 40 * mib, limit: 80 * mib, nonHeap: 8 * mib}, want: none},
		{name: "raised, needs nearly as much: keep", r: reading{live: 40 * mib, goal: 70 * mib, limit: 70 * mib, nonHeap: 8 * mib}, canLower: true, want: none},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, limit := decide(tc.r, 52*mib, tc.canTrim, tc.trimmed, tc.canLower)
			if got != tc.want || limit != tc.wantLimit {
				t.Errorf("decide = %v, %d MiB; want %v, %d MiB", got, limit/mib, tc.want, tc.wantLimit/mib)
			}
		})
	}
}

// TestGuardEndsSpiral: a process whose live heap (a working set and a
// cache) is above its soft memory limit collects over and over as it
// allocates. Under the guard, the cache is dropped, the limit is raised
// above what is left, and the same allocation then costs a few
// collections; once the working set is gone, the idle process collects once by itself and
// the limit comes back down to its base.
func TestGuardEndsSpiral(t *testing.T) {
	old := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(old) })
	const base = 28 * mib
	working := make([]byte, 24*mib)
	var cache atomic.Pointer[[]byte]
	c := make([]byte, 8*mib)
	cache.Store(&c)
	g := Start(Config{
		Limit: base, Trim: func() { cache.Store(nil) }, TrimEvery: time.Hour, LowerAfter: 100 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	defer g.Stop()

	// Allocate until the guard has acted, within a bound.
	until := func(what string, done func(Stats) bool) {
		t.Helper()
		deadline := time.Now().Add(time.Minute)
		for !done(g.Stats()) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within a minute: %+v", what, g.Stats())
			}
			churn(4 * mib)
		}
	}
	until("the cache dropped and the limit raised", func(s Stats) bool { return s.Raises > 0 })
	if st := g.Stats(); st.Trims != 1 || cache.Load() != nil || st.Limit <= base {
		t.Errorf("after the raise: %+v, cache dropped: %v; want one trim, the cache dropped, the limit above %d MiB", st, cache.Load() == nil, base/mib)
	}
	if got := debug.SetMemoryLimit(-1); got != g.Stats().Limit {
		t.Errorf("runtime's limit %d, guard says %d", got, g.Stats().Limit)
	}

	// 64 MiB of garbage now costs a few collections, not hundreds.
	before := gcCycles()
	churn(64 * mib)
	if n := gcCycles() - before; n > 30 {
		t.Errorf("%d collections for 64 MiB of garbage with a 24 MiB working set, want a few", n)
	}
	runtime.KeepAlive(working)

	// Idle, with the working set gone: the guard collects by itself and
	// comes back to the base.
	working = nil
	deadline := time.Now().Add(time.Minute)
	for g.Stats().Limit != base {
		if time.Now().After(deadline) {
			t.Fatalf("limit not back to its base within a minute of idle: %+v", g.Stats())
		}
		time.Sleep(10 * time.Millisecond) // polling the result, not synchronising
	}
	if st := g.Stats(); st.Settles == 0 {
		t.Errorf("back to the base without a collection of the guard's own: %+v", st)
	}
	if got := debug.SetMemoryLimit(-1); got != base {
		t.Errorf("limit %d MiB after the working set went, want the base %d MiB", got/mib, base/mib)
	}
}

// churn allocates n bytes of garbage in 32 KiB pieces, on the heap: each
// is stored through a pointer, which makes it escape.
func churn(n int) {
	last := new([]byte)
	for range n / (32 << 10) {
		*last = make([]byte, 32<<10)
	}
	runtime.KeepAlive(last)
}

// gcCycles is the number of collections so far.
func gcCycles() uint64 {
	s := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}
