package app

import (
	"testing"

	"github.com/edgenode/edgenode/kv"
	"github.com/edgenode/edgenode/node/core"
)

// TestMemoryLimit: each small profile's soft memory limit leaves the
// collector a quarter of room above everything the profile bounds
// (Badger's memtables and caches, the node's caches, the process's base),
// and the pi's is above the 52 MiB under which a user in 1,000 rooms made
// the idle node collect 40 times a second (issue 14); the server profile
// has none.
func TestMemoryLimit(t *testing.T) {
	tests := []struct {
		profile   string
		none      bool
		moreThan  int64
		wantCache int64
	}{
		{profile: "phone", wantCache: 12 << 20},
		{profile: "pi", moreThan: 52 << 20, wantCache: 16 << 20},
		{profile: "", moreThan: 52 << 20, wantCache: 16 << 20}, // pi, the default
		{profile: "server", none: true, wantCache: 96 << 20},
	}
	for _, tc := range tests {
		name := tc.profile
		if name == "" {
			name = "default"
		}
		t.Run(name, func(t *testing.T) {
			p, err := kv.ProfileByName(tc.profile)
			if err != nil {
				t.Fatal(err)
			}
			cache := core.DefaultCacheBytes(tc.profile)
			if cache != tc.wantCache {
				t.Errorf("cache budget %d MiB, want %d MiB", cache>>20, tc.wantCache>>20)
			}
			limit := memoryLimit(p, cache)
			if tc.none {
				if limit != 0 {
					t.Errorf("limit %d MiB, want none", limit>>20)
				}
				return
			}
			ws := workingSet(p, cache)
			if limit*4 < ws*5 {
				t.Errorf("limit %d MiB leaves no quarter above the working set of %d MiB", limit>>20, ws>>20)
			}
			if limit <= tc.moreThan {
				t.Errorf("limit %d MiB, want more than %d MiB", limit>>20, tc.moreThan>>20)
			}
		})
	}
}
