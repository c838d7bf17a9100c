package kv

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
)

// Badger on 32-bit platforms (armv7 Raspberry Pi OS, 32-bit Android, 386).
//
// The bug: ristretto v2's z.Allocator (every release to v2.4.2) moves to its
// next buffer with atomic.StoreUint64(&a.compIdx, uint64((bufIdx+1)<<32)),
// where bufIdx is an int. On 32-bit the shift gives 0, so once an allocator's
// first buffer is full it starts again at the front of that buffer, and
// Badger's table builder, which takes every block (and compression buffer)
// of a table from one allocator, overwrites blocks it has not written yet:
// tables come out corrupt and, without checksum checks, read as empty.
//
// The fix, from our side, without touching third-party code: options under
// which no builder ever asks its allocator for more than the first buffer.
// The builder's allocator comes from Badger's pool, created with
// 2*TableSize bytes (at most 256 MiB) rounded up to a power of two; a pooled allocator is
// reused after Reset (back to the front of its first buffer) by any builder.
// Let BS be the block size, P = 256 Badger's block padding, B the base table
// size, M the memtable size, and F the first buffer, the power of two at or
// above 2*B. The proof (TestArch32Bounds checks the arithmetic):
//
//  1. Compression off (and no encryption): a builder allocates only block
//     buffers of BS+P bytes, plus a bigger one when an entry outgrows its
//     block. Snappy would add a buffer per block, and a table's capacity is
//     counted after compression, so its raw size would have no bound.
//  2. No block outgrows its buffer: an entry is at most a 4-byte header, a
//     key of 65,000 bytes (Badger's limit) plus an 8-byte version, 12 bytes
//     of value metadata and an inline value below the value threshold (1 KiB
//     in every profile), and a block adds 4-byte offsets, a count and a
//     checksum of at most 24 bytes: at most maxBlockContent, below BS+P.
//  3. A block is closed only when the next entry would take it past BS, and
//     that entry opens the next block, so two consecutive blocks hold more
//     than BS-64 bytes: a table of D bytes has k <= 2D/(BS-64)+1 blocks, and
//     its builder allocates k*(BS+P) bytes.
//  4. A memtable flush builds one level-0 table from the whole memtable. Each
//     entry takes at least as many bytes of the memtable's arena as of the
//     table (the arena stores the same key and value plus a node header of at
//     least 20 bytes, which covers the table's 8 bytes of header and offset);
//     blocks add at most 28 bytes each. The arena is M plus Badger's 15% batch
//     allowance twice over, so D <= 1.3*M + 28k.
//  5. A compaction builds tables of the next level's table size; with a
//     TableSizeMultiplier of 1 that is B at every level. It closes a table at
//     the first new key once its finished blocks reach 0.95*B, so D <=
//     0.95*B + BS + V, where V is the further versions of that last key
//     (Badger keeps the versions newer than the oldest open read
//     transaction; kv's transactions are short). The bounds leave V M/2.
//  6. Every builder therefore asks for 2*B, so every pooled allocator has the
//     same first buffer F, and 3 and 4 (or 5) keep each builder within F.
//  7. The exception is Badger's level-0-to-level-0 compaction, which builds
//     with a table size of MaxUint32: on 32-bit 2*int(MaxUint32) is -2, so a
//     fresh allocator gets a 512-byte buffer (and Allocate then loops
//     forever) and a pooled one receives at least four merged tables. Badger
//     runs it only when level 0 holds four or more tables not being
//     compacted. NumLevelZeroTablesStall of 3 holds a flush until level 0 has
//     fewer than 3 tables, so an open database never has four; but a clean
//     close adds its pending flushes regardless, and a kill during a held
//     flush leaves its table in the MANIFEST. So kv.Open first counts level 0 in
//     the MANIFEST, and while it lists more than 3 tables, opens the database
//     without compactors and closes it with CompactL0OnClose, whose
//     level-0-to-base compaction moves at least the oldest table down.
//
// M stays the profile's memtable size, so a transaction may hold as much as
// on 64-bit and a memtable log written before an upgrade still fits its
// arena when it is replayed; B is 1.5*M, so F is 4*M when M is a power of
// two (8 MiB for the phone profile, 16 MiB for the pi).
//
// Apart from the bug, the address space: Badger maps each value-log file
// whole, and the one being written at twice ValueLogFileSize, so a 32-bit
// process (3 to 4 GiB of addresses, shared with the Go heap) cannot take
// Badger's default of 1 GiB; value-log files are capped at maxVlogFile32.
//
// The cost, on 32-bit only: no block compression (more disk), 68 KiB blocks,
// builder buffers of 4*M (touched only as far as used; a 64-bit flush of an
// 8 MiB memtable grows its allocator to 28 MiB anyway), and write stalls
// once level 0 has 3 tables.
const (
	// block32 is BS: the block size on 32-bit, above maxBlockContent.
	block32 = 68 << 10
	// blockPadding is P, the spare bytes Badger allocates with each block.
	blockPadding = 256
	// maxL0Tables is the most level-0 tables an open database may hold on
	// 32-bit; Badger's level-0-to-level-0 compaction needs four.
	maxL0Tables = 3
	// maxKeySize is Badger's limit on a key's length.
	maxKeySize = 65000
	// maxInlineValue is the largest value threshold allowed on 32-bit:
	// values below it are stored in the table itself.
	maxInlineValue = 1 << 10
	// maxVlogFile32 is the largest value-log file size on 32-bit.
	maxVlogFile32 = 64 << 20
	// maxBlockContent bounds one block holding one entry (point 2 above).
	maxBlockContent = 4 + maxKeySize + 8 + 12 + maxInlineValue + 4 + 4 + 24 + 4
	// maxL0Drains bounds the passes of drainLevel0.
	maxL0Drains = 64
)

// baseTable32 is B for a memtable size of m.
func baseTable32(m int64) int64 { return m / 2 * 3 }

// for32Bit returns bo changed as the comment above explains, so Badger's
// table builders stay within their allocator's first buffer on 32-bit. It
// fails if the profile's value threshold is above what the block size allows.
func for32Bit(bo badger.Options) (badger.Options, error) {
	if bo.ValueThreshold > maxInlineValue {
		return bo, fmt.Errorf("kv: value threshold %d above %d is not safe on 32-bit", bo.ValueThreshold, maxInlineValue)
	}
	bo = bo.WithCompression(options.None).
		WithBaseTableSize(baseTable32(bo.MemTableSize)).
		WithBlockSize(block32).
		WithNumLevelZeroTables(min(bo.NumLevelZeroTables, maxL0Tables-1)).
		WithNumLevelZeroTablesStall(maxL0Tables).
		WithValueLogFileSize(min(bo.ValueLogFileSize, maxVlogFile32))
	bo.TableSizeMultiplier = 1
	return bo, nil
}

// level0Tables counts the level-0 tables the MANIFEST in bo.Dir lists; a
// directory without one has none.
func level0Tables(bo badger.Options) (int, error) {
	f, err := os.Open(filepath.Join(bo.Dir, badger.ManifestFilename))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("kv: %w", err)
	}
	defer f.Close()
	m, _, err := badger.ReplayManifestFile(f, bo.ExternalMagicVersion, bo)
	if err != nil {
		return 0, fmt.Errorf("kv: reading %s: %w", f.Name(), err)
	}
	n := 0
	for _, t := range m.Tables {
		if t.Level == 0 {
			n++
		}
	}
	return n, nil
}

// drainLevel0 brings level 0 of the database in bo.Dir down to maxL0Tables
// or fewer (point 7 above): while the MANIFEST lists more, it opens the
// database with no compactor, so no level-0-to-level-0 compaction can start,
// and closes it with CompactL0OnClose, which compacts level 0 into the base
// level. Each pass moves at least the oldest table; only the first can add
// any (the memtables it replays).
func drainLevel0(bo badger.Options) error {
	for pass := 0; ; pass++ {
		n, err := level0Tables(bo)
		if err != nil {
			return err
		}
		if n <= maxL0Tables {
			return nil
		}
		if pass == maxL0Drains {
			return fmt.Errorf("kv: level 0 still has %d tables after %d compactions", n, pass)
		}
		bdb, err := badger.Open(bo.WithNumCompactors(0).WithCompactL0OnClose(true))
		if err != nil {
			return fmt.Errorf("kv: open %s to compact level 0: %w", bo.Dir, err)
		}
		if err := bdb.Close(); err != nil {
			return fmt.Errorf("kv: compact level 0 of %s: %w", bo.Dir, err)
		}
	}
}
