package core

import (
	"github.com/edgenode/edgenode/internal/devprofile"
	"github.com/matrix-org/gomatrixserverlib"
)

// The node's in-memory caches (parsed events, decoded state, room lists)
// are bounded by bytes as well as by count, in one budget per profile
// (Config.CacheBytes), so that a user in many rooms cannot make them hold
// more than the device's memory allows. Issue 14: after three initial
// syncs of a user in 1,000 rooms, the parsed-event cache alone held about
// 19 MB of the pi's 52 MiB soft memory limit, and the collector ran
// without end. The caches refill on demand from the database; TrimCaches
// drops them when the process is short of memory.

// Default cache budgets by storage profile (Config.CacheBytes). An initial
// sync of a user in 100 rooms of 100 events reads about 2,600 events
// (timelines of 20, state, history visibility): 12 MiB keeps them parsed
// between syncs (syncapi's InitialSync100Rooms: 26-40 ms at 12 or 16 MiB,
// 54 ms at 8 MiB, where the parsed events no longer fit).
const (
	phoneCacheBytes  = 12 << 20
	piCacheBytes     = 16 << 20
	serverCacheBytes = 96 << 20
)

// DefaultCacheBytes is the cache budget (Config.CacheBytes) of a storage
// profile ("" is devprofile.Default, as for storage and libp2p).
func DefaultCacheBytes(profile string) int64 {
	switch devprofile.Resolve(profile) {
	case devprofile.Phone:
		return phoneCacheBytes
	case devprofile.Server:
		return serverCacheBytes
	default:
		return piCacheBytes
	}
}

// cacheBudget splits a node's cache budget between its caches: parsed
// events (the auth events of every send, the timelines of syncs) take
// five eighths; decoded state snapshots and blocks, which every send and
// sync reads too, a quarter; users' room lists the rest.
type cacheBudget struct {
	pdus, states, bumps int
}

func splitCacheBudget(total int64) cacheBudget {
	return cacheBudget{pdus: int(total * 5 / 8), states: int(total / 4), bumps: int(total / 8)}
}

// Count bounds of the caches, beside their byte bounds: the byte bound is
// the one that matters; these keep the maps of tiny entries small.
const (
	maxCachedPDUs        = 8192
	maxCachedStateBlocks = 4096
	maxCachedSnapshots   = 256
)

// pduCacheSize estimates what a parsed event holds: its JSON (its capacity:
// canonical JSON is built by appending), about as much again in the fields
// parsed out of it (the content is a copy), and the structure itself.
func pduCacheSize(p gomatrixserverlib.PDU) int {
	j := p.JSON()
	return cap(j) + len(j) + pduFixedSize
}

// pduFixedSize is a parsed event's structure, strings and slices aside.
const pduFixedSize = 400

// stateEntrySize estimates one state entry: three string headers and their
// bytes.
func stateEntrySize(e stateEntry) int { return 48 + len(e.Type) + len(e.StateKey) + len(e.EventID) }

// stateBlockSize estimates a decoded block.
func stateBlockSize(b *stateBlock) int {
	n := 64 + len(b.Hash)
	for _, e := range b.Entries {
		n += stateEntrySize(e)
	}
	return n
}

// stateSnapshotFixedSize is a State without its blocks: 256 block pointers,
// 16 superblock hashes and the ID.
const stateSnapshotFixedSize = stateBuckets*8 + NumSupers*(16+hashLen) + 64

// stateSnapshotSize estimates a decoded snapshot with its blocks. Blocks are
// shared with other snapshots and the block cache, so this counts some
// twice; a snapshot in the cache keeps its blocks alive whether or not the
// block cache still has them, so it is the bound that holds.
func stateSnapshotSize(s *State) int {
	n := stateSnapshotFixedSize
	for _, b := range s.Blocks {
		if b != nil {
			n += stateBlockSize(b)
		}
	}
	return n
}

// roomBumpsSize estimates a user's cached room list.
func roomBumpsSize(list []RoomBump) int {
	n := 24 // the slice header
	for _, b := range list {
		n += 48 + len(b.RoomID) + len(b.Membership)
	}
	return n
}

// TrimCaches drops everything the node caches in memory (parsed events,
// decoded state, room lists); they refill from the database as they are
// read again. The process calls it when its live heap nears its memory
// limit, so that the garbage collector gets room instead of running
// without end.
func (n *Node) TrimCaches() {
	n.pdus.clear()
	n.States.blocks.clear()
	n.States.snaps.clear()
	n.UserBumps.clear()
}

// cacheStats is what the node's in-memory caches hold.
type cacheStats struct {
	// entries is the number of cached items; bytes their estimated size.
	entries, bytes int
	// budget is the bound on bytes (Config.CacheBytes).
	budget int64
}

// cacheStats reports what the node's caches hold now.
func (n *Node) cacheStats() cacheStats {
	st := cacheStats{budget: n.cfg.CacheBytes}
	for _, held := range []func() (int, int){n.pdus.held, n.States.blocks.held, n.States.snaps.held, n.UserBumps.lists.held} {
		e, b := held()
		st.entries += e
		st.bytes += b
	}
	return st
}

// maxTxnResponsesInMemory bounds the responses of transactions that changed
// nothing, remembered in memory only (InboundTxn); each is at most one
// error string per PDU.
const maxTxnResponsesInMemory = 64
