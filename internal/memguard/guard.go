// Package memguard keeps a Go process's soft memory limit from turning into
// a garbage-collection spiral.
//
// A soft memory limit (debug.SetMemoryLimit) makes the collector run sooner
// as the process's Go memory nears it. When the live heap itself is near
// the limit, every collection leaves the heap at its goal and the next one
// starts at once: issue 14 measured about 40 collections a second, for
// ever, on an idle node (gctrace "37->37->37 MB, 37 MB goal"), the Go
// runtime spending up to half the CPU on it. The guard watches each
// collection's outcome, with no polling: a finalizer that re-arms itself
// runs once per collection, so an idle process that does not collect costs
// nothing. When a collection leaves little room under the limit, the guard
// first drops what the process keeps only to go faster (Config.Trim: the
// node's caches); if the live heap is still too close to the limit a few
// collections later, the working set is real, and the guard raises the
// limit above it so that the collector has room again, and says so in the
// log. It lowers the limit again, down to the base, as the live heap
// shrinks.
package memguard

import (
	"context"
	"log/slog"
	"math"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"time"
)

// Config configures a Guard.
type Config struct {
	// Limit is the soft memory limit the process wants (the base: the guard
	// raises it only while the live heap needs more, then comes back to
	// it). Start sets it.
	Limit int64
	// GCPercent, when above zero, is set as the collector's GOGC: the heap
	// may grow by this percentage of the live heap before a collection.
	// With a limit that no longer binds (raised above the live heap), it
	// is what bounds the heap's peak.
	GCPercent int
	// Trim, when set, drops what the process can rebuild (caches). It is
	// called from the guard's goroutine, at most once per TrimEvery.
	Trim func()
	// TrimEvery is the least time between two trims; zero means 10 s.
	TrimEvery time.Duration
	// LowerAfter is the least time from a raise of the limit to lowering
	// it again; zero means 30 s. An initial sync's heap rises and falls
	// within seconds, and would otherwise move the limit up and down many
	// times. LowerAfter after the last raise, and every LowerAfter while
	// the limit stays raised, the guard collects and returns the free
	// memory to the system: an idle process may not collect for minutes,
	// and would keep the memory of its last burst until then.
	LowerAfter time.Duration
	// Logger receives a line when the limit is raised or restored; nil
	// uses slog.Default().
	Logger *slog.Logger
}

// The guard's marks, as fractions of the live heap after a collection.
const (
	// A collection is tight when its heap goal leaves less than a quarter
	// of the live heap to allocate before the next one: with GOGC=100 and
	// no limit, the goal is twice the live heap.
	tightNum, tightDen = 5, 4
	// A raised limit puts the goal at one and a half times the live heap,
	// with the runtime's memory beside the heap (stacks, the collector's
	// structures), which the limit counts too.
	raiseNum, raiseDen = 3, 2
	// lowerSlack: a raised limit is lowered only when the limit the live
	// heap needs is this much under it, so that it does not follow every
	// collection.
	lowerSlack = 4 << 20
	// collectionsAfterTrim is how many collections after a trim the guard
	// waits before it judges that the trim was not enough: the collection
	// under way when the caches were dropped may still have marked them.
	collectionsAfterTrim = 2
	// raiseRound rounds a raised limit up to whole MiB.
	raiseRound = 1 << 20
)

// Guard watches collections and keeps the soft memory limit above the
// live heap. Its methods are safe for concurrent use.
type Guard struct {
	cfg  Config
	log  *slog.Logger
	gcs  chan struct{} // one token per collection not yet looked at
	stop chan struct{}
	done chan struct{}
	once sync.Once

	// The goroutine's own state.
	lastTrim  time.Time
	sinceTrim int // collections since the last trim
	lastRaise time.Time
	settle    *time.Timer // LowerAfter after the last raise
	samples   []metrics.Sample

	trims, raises, lowers, settles, collections atomic.Int64
	limit                                       atomic.Int64
}

// Stats is what a Guard has done.
type Stats struct {
	// Collections is the number of collections the guard looked at.
	Collections int64
	// Trims, Raises and Lowers count the guard's actions; Settles the
	// collections it made LowerAfter after a raise.
	Trims, Raises, Lowers, Settles int64
	// Limit is the soft memory limit now.
	Limit int64
}

// sentinel is garbage as soon as it is made; its finalizer runs after the
// collection that finds it, and makes the next one. It holds a pointer so
// that it is not a tiny allocation (whose finalizer may never run).
type sentinel struct{ g *Guard }

// Start sets the soft memory limit to cfg.Limit (and GOGC to
// cfg.GCPercent) and starts watching collections. Stop ends it (and leaves
// the limit as it is).
func Start(cfg Config) *Guard {
	if cfg.TrimEvery <= 0 {
		cfg.TrimEvery = 10 * time.Second
	}
	if cfg.LowerAfter <= 0 {
		cfg.LowerAfter = 30 * time.Second
	}
	g := &Guard{
		cfg: cfg, log: cfg.Logger,
		gcs:  make(chan struct{}, 1),
		stop: make(chan struct{}),
		done: make(chan struct{}),
		samples: []metrics.Sample{
			{Name: "/gc/heap/live:bytes"},
			{Name: "/gc/heap/goal:bytes"},
			{Name: "/memory/classes/total:bytes"},
			{Name: "/memory/classes/heap/released:bytes"},
			{Name: "/memory/classes/heap/free:bytes"},
			{Name: "/memory/classes/heap/objects:bytes"},
			{Name: "/memory/classes/heap/unused:bytes"},
		},
	}
	if g.log == nil {
		g.log = slog.Default()
	}
	if cfg.GCPercent > 0 {
		debug.SetGCPercent(cfg.GCPercent)
	}
	debug.SetMemoryLimit(cfg.Limit)
	g.limit.Store(cfg.Limit)
	g.settle = time.NewTimer(time.Hour)
	g.settle.Stop()
	go g.run()
	g.arm()
	return g
}

// arm makes a sentinel for the next collection.
func (g *Guard) arm() {
	runtime.SetFinalizer(&sentinel{g: g}, func(s *sentinel) {
		select {
		case <-s.g.stop:
			return // the chain ends here
		default:
		}
		select {
		case s.g.gcs <- struct{}{}:
		default: // the goroutine has one to look at already
		}
		s.g.arm()
	})
}

// Stop ends the guard. The limit stays as it is.
func (g *Guard) Stop() {
	g.once.Do(func() { close(g.stop) })
	<-g.done
}

// Stats reports what the guard has done so far.
func (g *Guard) Stats() Stats {
	return Stats{
		Collections: g.collections.Load(),
		Trims:       g.trims.Load(), Raises: g.raises.Load(), Lowers: g.lowers.Load(), Settles: g.settles.Load(),
		Limit: g.limit.Load(),
	}
}

func (g *Guard) run() {
	defer close(g.done)
	defer g.settle.Stop()
	for {
		select {
		case <-g.stop:
			return
		case <-g.gcs:
			g.afterGC()
		case <-g.settle.C:
			if g.limit.Load() > g.cfg.Limit {
				// The collection lets afterGC lower the limit; the
				// memory freed goes back to the system at once. Again
				// later while the limit stays raised: one collection
				// every LowerAfter, only then.
				debug.FreeOSMemory()
				g.settles.Add(1)
				g.settle.Reset(g.cfg.LowerAfter)
			}
		}
	}
}

// afterGC reads the collection's outcome and acts on it.
func (g *Guard) afterGC() {
	g.collections.Add(1)
	metrics.Read(g.samples)
	v := func(i int) int64 { return int64(g.samples[i].Value.Uint64()) }
	r := reading{
		live: v(0), goal: v(1), limit: g.limit.Load(),
		// What the limit counts beside the heap's spans.
		nonHeap: v(2) - v(3) - v(4) - v(5) - v(6),
	}
	g.sinceTrim++
	now := time.Now()
	canTrim := g.cfg.Trim != nil && (g.lastTrim.IsZero() || now.Sub(g.lastTrim) >= g.cfg.TrimEvery)
	trimmed := !g.lastTrim.IsZero() && g.sinceTrim <= collectionsAfterTrim
	canLower := now.Sub(g.lastRaise) >= g.cfg.LowerAfter
	act, to := decide(r, g.cfg.Limit, canTrim, trimmed, canLower)
	switch act {
	case trim:
		g.cfg.Trim()
		g.lastTrim, g.sinceTrim = now, 0
		g.trims.Add(1)
	case raise:
		old := g.limit.Swap(to)
		debug.SetMemoryLimit(to)
		g.lastRaise = now
		g.settle.Reset(g.cfg.LowerAfter)
		g.raises.Add(1)
		level := slog.LevelDebug
		if old == g.cfg.Limit {
			level = slog.LevelInfo // once per excursion above the base
		}
		g.log.Log(context.Background(), level, "live heap near the soft memory limit after dropping caches: limit raised, or the collector would run without end",
			"live_mib", r.live>>20, "goal_mib", r.goal>>20, "old_limit_mib", old>>20, "new_limit_mib", to>>20)
	case lower:
		debug.SetMemoryLimit(to)
		g.limit.Store(to)
		g.lowers.Add(1)
		level := slog.LevelDebug
		if to == g.cfg.Limit {
			level = slog.LevelInfo
		}
		g.log.Log(context.Background(), level, "soft memory limit lowered", "live_mib", r.live>>20, "limit_mib", to>>20, "base_mib", g.cfg.Limit>>20)
	}
}

// reading is a collection's outcome and the limit it ran under; nonHeap is
// the Go memory the limit counts beside the heap.
type reading struct{ live, goal, limit, nonHeap int64 }

// action is what the guard does after a collection.
type action int

const (
	none     action = iota
	trim            // drop the caches
	raise           // raise the limit (to the limit returned)
	lower           // lower a raised limit (to the limit returned)
	waitTrim        // tight, but a trim was just made: wait for it to show
)

// decide is the guard's rule. base is the limit configured; canTrim says a
// trim is allowed now, trimmed that one was made within the last few
// collections, canLower that a raised limit may be lowered.
func decide(r reading, base int64, canTrim, trimmed, canLower bool) (action, int64) {
	if r.limit <= 0 || r.limit == math.MaxInt64 {
		return none, 0
	}
	tight := r.goal*tightDen < r.live*tightNum
	// The limit that gives the live heap room.
	want := r.live*raiseNum/raiseDen + max(r.nonHeap, 0)
	want = (want + raiseRound - 1) / raiseRound * raiseRound
	switch {
	case tight && trimmed:
		return waitTrim, 0
	case tight && canTrim:
		return trim, 0
	case tight:
		return raise, max(want, r.limit+raiseRound)
	case canLower && r.limit > base && want <= r.limit-lowerSlack:
		return lower, max(want, base)
	}
	return none, 0
}
