package kv

import (
	"fmt"
	"sort"
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
}

const mib = 1 << 20

var profiles = map[string]Profile{
	"phone": {
		Name: "phone", MemTableSize: 8 * mib, NumMemtables: 2, BlockCacheSize: 4 * mib,
		IndexCacheSize: 2 * mib, ValueLogFileSize: 16 * mib, NumCompactors: 2, ValueThreshold: 1024,
	},
	"pi": {
		Name: "pi", MemTableSize: 8 * mib, NumMemtables: 2, BlockCacheSize: 8 * mib,
		IndexCacheSize: 4 * mib, ValueLogFileSize: 16 * mib, NumCompactors: 2, ValueThreshold: 1024,
	},
	"server": {
		Name: "server", MemTableSize: 64 * mib, NumMemtables: 5, BlockCacheSize: 256 * mib,
		IndexCacheSize: 64 * mib, ValueLogFileSize: 256 * mib, NumCompactors: 4, ValueThreshold: 1024,
	},
}

// DefaultProfile is the profile used when none is named: a Raspberry Pi.
const DefaultProfile = "pi"

// ProfileByName returns the named profile ("phone", "pi" or "server"); an empty
// name gives DefaultProfile.
func ProfileByName(name string) (Profile, error) {
	if name == "" {
		name = DefaultProfile
	}
	p, ok := profiles[name]
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
