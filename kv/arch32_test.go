package kv

import (
	"bytes"
	"fmt"
	"math/bits"
	"testing"

	"github.com/dgraph-io/badger/v4"
)

// firstBuffer is the size of ristretto's z.NewAllocator(sz) first buffer:
// sz rounded up to a power of two.
func firstBuffer(sz int64) int64 { return 1 << bits.Len64(uint64(sz-1)) }

// builderAlloc is what a table builder with compression off allocates for a
// table of d bytes (arch32.go, point 3).
func builderAlloc(d float64) float64 {
	k := 2*d/float64(block32-64) + 1
	return k * float64(block32+blockPadding)
}

// TestArch32Bounds checks the arithmetic of the 32-bit proof in arch32.go
// for every profile: no table builder outgrows its allocator's first buffer.
func TestArch32Bounds(t *testing.T) {
	if got := firstBuffer(3 << 20); got != 4<<20 {
		t.Fatalf("firstBuffer(3 MiB) = %d, want 4 MiB", got)
	}
	if maxBlockContent >= block32+blockPadding {
		t.Errorf("a one-entry block (%d bytes) outgrows its buffer (%d)", maxBlockContent, block32+blockPadding)
	}
	for _, name := range ProfileNames() {
		p, err := ProfileByName(name)
		if err != nil {
			t.Fatal(err)
		}
		m := p.MemTableSize
		b := baseTable32(m)
		// Badger caps the size it asks for at 256 MiB.
		f := firstBuffer(min(2*b, 256<<20))

		// Point 4: a flush. k blocks add 28 bytes each, so with
		// D = arena + 28k, k <= (2*arena + BS-64) / (BS-64-56).
		batch := float64(15*m) / 100
		arena := float64(m) + 2*batch
		k := (2*arena + block32 - 64) / (block32 - 64 - 56)
		flush := builderAlloc(arena + 28*k)
		// Point 5: a compaction, with M/2 of versions of its last key.
		compaction := builderAlloc(0.95*float64(b) + block32 + float64(m)/2)
		t.Logf("%s: first buffer %d MiB; a flush allocates at most %.1f MiB, a compaction %.1f MiB",
			name, f>>20, flush/(1<<20), compaction/(1<<20))
		for what, alloc := range map[string]float64{"flush": flush, "compaction": compaction} {
			if alloc > float64(f) {
				t.Errorf("%s: a %s may allocate %.0f bytes, beyond the first buffer of %d", name, what, alloc, f)
			}
		}
		if p.ValueThreshold > maxInlineValue {
			t.Errorf("%s: value threshold %d above %d", name, p.ValueThreshold, maxInlineValue)
		}
	}
}

// TestFor32Bit opens a database with each profile's 32-bit options (on any
// platform), so Badger accepts them, and refuses a value threshold the
// block size does not allow.
func TestFor32Bit(t *testing.T) {
	for _, name := range ProfileNames() {
		t.Run(name, func(t *testing.T) {
			p, err := ProfileByName(name)
			if err != nil {
				t.Fatal(err)
			}
			bo, err := for32Bit(badgerOptions(t.TempDir(), p, true).WithLogger(nil))
			if err != nil {
				t.Fatal(err)
			}
			db, err := badger.Open(bo)
			if err != nil {
				t.Fatalf("Open with 32-bit options: %v", err)
			}
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
	if _, err := for32Bit(badger.DefaultOptions(t.TempDir()).WithValueThreshold(maxInlineValue + 1)); err == nil {
		t.Error("for32Bit accepted a value threshold above the block size's allowance")
	}
	if bo, err := for32Bit(badger.DefaultOptions(t.TempDir()).WithValueThreshold(maxInlineValue)); err != nil || bo.ValueLogFileSize > maxVlogFile32 {
		t.Errorf("for32Bit: value-log file size %d (%v), want at most %d", bo.ValueLogFileSize, err, maxVlogFile32)
	}
}

// TestDrainLevel0 leaves level 0 with more tables than a 32-bit open
// allows (no compactors, a high stall limit, small memtables), then checks
// drainLevel0 brings it down to maxL0Tables and every key is still there.
func TestDrainLevel0(t *testing.T) {
	bo := badger.DefaultOptions(t.TempDir()).WithLogger(nil).WithValueLogFileSize(1 << 20).
		WithMemTableSize(1 << 20).WithNumCompactors(0).WithValueThreshold(1 << 10).
		WithNumLevelZeroTables(20).WithNumLevelZeroTablesStall(40)
	bo, err := for32Bit(bo)
	if err != nil {
		t.Fatal(err)
	}
	bo = bo.WithNumLevelZeroTables(20).WithNumLevelZeroTablesStall(40)

	db, err := badger.Open(bo)
	if err != nil {
		t.Fatal(err)
	}
	value := bytes.Repeat([]byte("v"), 500)
	const keys = 12000 // about 6 MiB: several 1 MiB memtables
	for i := 0; i < keys; i += 100 {
		err := db.Update(func(txn *badger.Txn) error {
			for j := i; j < i+100; j++ {
				if err := txn.Set(fmt.Appendf(nil, "key-%06d", j), value); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	n, err := level0Tables(bo)
	if err != nil {
		t.Fatal(err)
	}
	if n <= maxL0Tables {
		t.Fatalf("setup left %d level-0 tables, want more than %d", n, maxL0Tables)
	}

	if err := drainLevel0(bo); err != nil {
		t.Fatal(err)
	}
	if n, err = level0Tables(bo); err != nil || n > maxL0Tables {
		t.Fatalf("after drainLevel0: %d level-0 tables (%v), want at most %d", n, err, maxL0Tables)
	}
	db, err = badger.Open(bo)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.View(func(txn *badger.Txn) error {
		for i := range keys {
			if _, err := txn.Get(fmt.Appendf(nil, "key-%06d", i)); err != nil {
				return fmt.Errorf("key %d: %w", i, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
