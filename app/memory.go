package app

import (
	"log/slog"
	"testing"

	"github.com/edgenode/edgenode/internal/memguard"
	"github.com/edgenode/edgenode/kv"
	"github.com/edgenode/edgenode/node/core"
)

// The Go runtime's soft memory limit by profile. Without one, the Go heap
// grows to twice its live size before a collection and its peak stays
// resident: after the footprint load the pi profile's RSS was 130-137 MB
// (peak 180-200 MB) against a 100 MB target (BENCHMARKS.md, "Footprint").
// But a limit at or under the working set is worse than none: with the pi's
// old fixed 52 MiB, a user in 1,000 rooms left a live heap of 37-39 MB
// after three initial syncs (Badger's memtable and block cache about 21 MB,
// the node's parsed events about 19 MB), the heap goal the limit allowed
// equalled the live heap, and the idle node collected about 40 times a
// second for ever (issue 14). So the limit is now derived from what the
// profile bounds, with room above it, and a guard (internal/memguard)
// drops the node's caches, and then raises the limit, when a collection
// still leaves the live heap near it. The server profile has none.

// processBaseBytes is the live heap of a node beside Badger and its caches
// (libp2p and the DHT, the HTTP server, goroutines): an idle node on an
// empty database holds about 7 MB of anonymous memory in all.
const processBaseBytes = 8 << 20

// memtableArena is Badger's in-memory size of one memtable for its
// MemTableSize: the skiplist arena is allocated whole, with room for a
// batch (15%) and its nodes (another 15%) beyond the table size (Badger
// v4's arenaSize).
func memtableArena(size int64) int64 { return size * 13 / 10 }

// workingSet is the Go memory a node of profile p needs at most, as far as
// it is bounded: every memtable Badger may hold, its block and index
// caches, the node's caches (cacheBytes) and the process's base.
func workingSet(p kv.Profile, cacheBytes int64) int64 {
	return int64(p.NumMemtables)*memtableArena(p.MemTableSize) + p.BlockCacheSize + p.IndexCacheSize +
		cacheBytes + processBaseBytes
}

// gcPercent is GOGC on the small profiles: the heap grows by half its live
// size before a collection, not by all of it. While the soft limit binds,
// it sets the heap's peak; when a burst (a large load, an initial sync of
// many rooms) makes the guard raise the limit above the live heap, this
// does: after a load of 1,000 rooms the live heap swung between 27 and 92
// MB, and with GOGC=100 the process held twice that.
const gcPercent = 50

// memoryLimit is the soft limit of profile p: its working set and a quarter
// more, for the collector to work in (the limit counts all the Go runtime's
// memory, stacks and the collector's own structures too, not only the
// heap), rounded up. pi: 58 MiB, phone: 39 MiB with kv's sizes (4 and
// 2 MiB memtables) and the node's cache budgets at the time of writing. 0
// is none.
func memoryLimit(p kv.Profile, cacheBytes int64) int64 {
	if p.Name == "server" {
		return 0
	}
	return (workingSet(p, cacheBytes)*5 + 3) / 4
}

// StartMemoryGuard applies the soft memory limit and gcPercent of storage
// profile, and guards the limit (trim drops the node's caches: pass
// App.TrimCaches), unless GOMEMLIMIT is set (the operator's choice
// wins; so is GOGC) or the profile has none. cacheBytes is the node's cache
// budget (core.Config.CacheBytes; 0: the profile's default). The limit is
// process-wide, so the command and the mobile facade set it, never App.Start,
// and in a test binary it is left alone. It returns the guard, nil for
// none; Stop it when the node stops.
func StartMemoryGuard(profile string, cacheBytes int64, trim func(), getenv func(string) string, log *slog.Logger) *memguard.Guard {
	p, err := kv.ProfileByName(profile)
	if err != nil || getenv("GOMEMLIMIT") != "" || testing.Testing() {
		return nil
	}
	if cacheBytes <= 0 {
		cacheBytes = core.DefaultCacheBytes(profile)
	}
	limit := memoryLimit(p, cacheBytes)
	if limit <= 0 {
		return nil
	}
	log.Debug("Go soft memory limit set", "profile", p.Name, "limit_mib", limit>>20)
	cfg := memguard.Config{Limit: limit, Trim: trim, Logger: log}
	if getenv("GOGC") == "" {
		cfg.GCPercent = gcPercent
	}
	return memguard.Start(cfg)
}
