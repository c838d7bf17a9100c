package kv

import (
	"fmt"
	"sort"

	"github.com/edgenode/edgenode/internal/devprofile"
)

// Profile sizes Badger's memory use for a class of device. Badger's defaults
// are sized for servers (hundreds of MiB of caches); the phone and pi profiles
// keep the resident set in the tens of MiB.
type Profile struct {
	// Name is the profile's name as written in configs and flags.
	Name string
	// MemTableSize is the size of one memtable, in bytes.
	MemTableSize int64
	// NumMemtables is how many memtables may be held in memory at once.
	NumMemtables int
	// BlockCacheSize is the block cache size, in bytes.
	BlockCacheSize int64
	// IndexCacheSize is the index cache size, in bytes.
	IndexCacheSize int64
	// ValueLogFileSize is the size of one value-log file, in bytes.
	ValueLogFileSize int64
	// NumCompactors is the number of compaction goroutines (Badger needs at least 2).
	NumCompactors int
	// ValueThreshold is the value size above which values go to the value log.
	// It must be at most 15% of MemTableSize.
	ValueThreshold int64
	// TableSize is the size of the tables compactions write at the base
	// level (Badger's BaseTableSize; deeper levels double it). Each table a
	// compaction builds holds an allocator of about four times this size
	// until it is written, Badger keeps up to 8 plus one per split of its
	// key range in flight, and its pool keeps eight more while writes go on:
	// with Badger's 2 MiB, a pi node under a send load held 88 MiB of them
	// (issue 14), more than everything else in its heap together. Zero is
	// Badger's default.
	TableSize int64
}

const mib = 1 << 20

// The phone and pi profiles keep a small database small. Badger sizes some
// files before they hold anything: each memtable's write-ahead log (.mem) at
// twice MemTableSize and the value log being written (.vlog) at twice
// ValueLogFileSize, both sparse, so they show at that size in ls -l (and in
// apparent-size listings) while taking only what was written, and the
// memtable itself is a Go heap arena of about 1.3 x MemTableSize from the
// moment it opens. Value-log GC never rewrites the file being written, so a
// smaller ValueLogFileSize also lets garbage be reclaimed sooner
// (node/vloggc.go). The floors: Badger refuses value-log files under 1 MiB;
// on 32-bit, memtables under 2 MiB break the bound in arch32.go (point 5);
// and a transaction may hold about 15% of MemTableSize (large values count
// only as pointers), which bounds, for one, the state a federated join
// stores in one commit: a quarter of what the 8 MiB memtables these
// profiles had before allowed on the phone, half on the pi.
var profiles = map[string]Profile{
	"phone": {
		Name: "phone", MemTableSize: 2 * mib, NumMemtables: 2, BlockCacheSize: 4 * mib,
		IndexCacheSize: 2 * mib, ValueLogFileSize: 1 * mib, NumCompactors: 2, ValueThreshold: 1024,
		TableSize: mib / 2,
	},
	"pi": {
		Name: "pi", MemTableSize: 4 * mib, NumMemtables: 2, BlockCacheSize: 8 * mib,
		IndexCacheSize: 4 * mib, ValueLogFileSize: 4 * mib, NumCompactors: 2, ValueThreshold: 1024,
		TableSize: mib / 2,
	},
	"server": {
		Name: "server", MemTableSize: 64 * mib, NumMemtables: 5, BlockCacheSize: 256 * mib,
		IndexCacheSize: 64 * mib, ValueLogFileSize: 256 * mib, NumCompactors: 4, ValueThreshold: 1024,
		TableSize: 2 * mib,
	},
}

// DefaultProfile is the profile used when none is named: a Raspberry Pi.
// devprofile decides it, for libp2p's sizing too.
const DefaultProfile = devprofile.Default

// ProfileByName returns the named profile ("phone", "pi" or "server"); an empty
// name gives DefaultProfile.
func ProfileByName(name string) (Profile, error) {
	p, ok := profiles[devprofile.Resolve(name)]
	if !ok {
		return Profile{}, fmt.Errorf("kv: unknown profile %q (known: %v)", name, ProfileNames())
	}
	return p, nil
}

// ProfileNames lists the known profile names, sorted.
func ProfileNames() []string {
	names := make([]string, 0, len(profiles))
	for n := range profiles {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
