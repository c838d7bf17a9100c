package core

import (
	"sync/atomic"
	"time"
)

// DefaultValueLogGCInterval is how often the node looks for value-log
// garbage when nothing prompts it sooner.
const DefaultValueLogGCInterval = 10 * time.Minute

// maxGCRewritesPerPass bounds the value-log files one pass rewrites, so a
// pass after a large purge does not hold the disk for long; the next pass
// carries on.
const maxGCRewritesPerPass = 16

// valueLogGC runs Badger's value-log garbage collection for the node. Badger
// never runs it itself, so without it the value log (every value of
// ValueThreshold bytes or more: large events, before and after a redaction
// rewrites them) only grows.
//
// It costs nothing when idle: it wakes every interval, and runs a pass only
// if something was committed since the last one (or a pass is still owed,
// below); a redaction that frees half a value-log file or more of large
// event JSON pokes it at once. Badger learns what is garbage only when a
// compaction drops the old versions, which may be after the poke, so a poke
// leaves a pass owed until a pass rewrites something. One goroutine runs the
// passes, so they never overlap; Close stops it before closing the database.
type valueLogGC struct {
	interval time.Duration
	wake     chan struct{}
	stop     chan struct{}
	done     chan struct{}
	// freed counts bytes of value-log values made garbage since the last
	// poke; pokeAt is the count that pokes (half a value-log file: Badger
	// rewrites a file only when half of it is garbage).
	freed  atomic.Int64
	pokeAt int64
	// owed is set by a poke and cleared by a pass that rewrote a file.
	owed atomic.Bool
}

// startValueLogGC starts the collector; stopValueLogGC ends it.
func (n *Node) startValueLogGC(interval time.Duration, valueLogFileSize int64) {
	if interval <= 0 {
		interval = DefaultValueLogGCInterval
	}
	n.vlogGC = &valueLogGC{
		interval: interval, pokeAt: max(valueLogFileSize/2, 1),
		wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
	}
	go n.runValueLogGC()
}

func (n *Node) stopValueLogGC() {
	if n.vlogGC == nil {
		return
	}
	close(n.vlogGC.stop)
	<-n.vlogGC.done
}

// noteValueGarbage records that a committed write made size bytes of a
// stored value garbage (a redaction replacing an event's JSON); values
// below the profile's value threshold live in the LSM tree and are
// reclaimed by compaction alone, so they are not counted.
func (n *Node) noteValueGarbage(size int) {
	g := n.vlogGC
	if g == nil || int64(size) < n.valueThreshold {
		return
	}
	if g.freed.Add(int64(size)) < g.pokeAt {
		return
	}
	g.freed.Store(0)
	g.owed.Store(true)
	select {
	case g.wake <- struct{}{}:
	default:
	}
}

func (n *Node) runValueLogGC() {
	g := n.vlogGC
	defer close(g.done)
	// The first tick always runs a pass: garbage of the last session (its
	// memtables are flushed at close and compacted after the next open)
	// is found then.
	var seen uint64
	first := true
	timer := time.NewTimer(g.interval)
	defer timer.Stop()
	for {
		select {
		case <-g.stop:
			return
		case <-g.wake:
		case <-timer.C:
			timer.Reset(g.interval)
			v := n.DB.Version()
			if !first && v == seen && !g.owed.Load() {
				continue // idle: nothing written, nothing owed
			}
			first = false
			seen = v
		}
		n.valueLogGCPass(g)
	}
}

// valueLogGCPass rewrites value-log files that are at least half garbage,
// up to maxGCRewritesPerPass of them.
func (n *Node) valueLogGCPass(g *valueLogGC) {
	for range maxGCRewritesPerPass {
		select {
		case <-g.stop:
			return
		default:
		}
		rewrote, err := n.DB.RunGC()
		if err != nil {
			n.log.Warn("value-log GC", "err", err)
			return
		}
		if !rewrote {
			return
		}
		g.owed.Store(false)
	}
}
