package kv

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
)

// ErrNotFound is returned by Get when a key does not exist.
var ErrNotFound = errors.New("kv: not found")

// ErrConflict is returned by Update when a concurrent transaction wrote a key
// this one read; the caller may retry.
var ErrConflict = badger.ErrConflict

// ErrTxnTooBig is returned by a write in Update (or Stream.Commit) when the
// transaction would hold more than the profile's memtable allows.
var ErrTxnTooBig = badger.ErrTxnTooBig

// Options configures Open.
type Options struct {
	// Dir is the database directory; it is created if missing.
	Dir string
	// Profile sizes caches and tables; see ProfileByName.
	Profile Profile
	// NoSyncWrites turns off fsync on commit. Off by default: a write
	// acknowledged to a caller is on disk.
	NoSyncWrites bool
	// Logger receives Badger's warnings and errors; nil discards them.
	Logger *slog.Logger
	// OnFault, if set, is called once, at the first storage fault (see
	// Fault), from the goroutine that found it; it must not block.
	OnFault func(error)
}

// DB is an open Badger database.
type DB struct {
	bdb    *badger.DB
	faults *faultLatch // fault.go
	// commits counts Update calls that returned nil (Version).
	commits atomic.Uint64
	// gc keeps value-log GC apart from commits: Badger v4.9.6's GC reads
	// the memtable's max version (DB.MaxVersion, in valueLog.rewrite)
	// without the lock its write goroutine holds, a data race with any
	// commit in flight. Commits share the lock; a GC pass (one file) takes
	// it alone, so writes wait for it.
	gc sync.RWMutex
}

// Open opens (creating if needed) the database in opts.Dir.
func Open(ctx context.Context, opts Options) (*DB, error) {
	if opts.Dir == "" {
		return nil, errors.New("kv: no directory given")
	}
	p := opts.Profile
	if p.Name == "" {
		var err error
		if p, err = ProfileByName(""); err != nil {
			return nil, err
		}
	}
	bo := badgerOptions(opts.Dir, p, !opts.NoSyncWrites).WithLogger(badgerLogger{opts.Logger})
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// Badger loses data on 32-bit with its usual options; see arch32.go.
	adjust := func(bo badger.Options) (badger.Options, error) {
		if strconv.IntSize != 32 {
			return bo, nil
		}
		bo, err := for32Bit(bo)
		if err != nil {
			return bo, err
		}
		return bo, drainLevel0(bo)
	}
	// Logs of a larger memtable first (memlog.go): replayed into the
	// profile's, they would not fit.
	if err := flushLargerMemLogs(bo, adjust); err != nil {
		return nil, err
	}
	bo, err := adjust(bo)
	if err != nil {
		return nil, err
	}
	bdb, err := badger.Open(bo)
	if err != nil {
		return nil, fmt.Errorf("kv: open %s: %w", opts.Dir, err)
	}
	return &DB{bdb: bdb, faults: newFaultLatch(opts.OnFault)}, nil
}

// Close flushes and closes the database. After a storage fault it gives up
// after a few seconds rather than hang (fault.go).
func (db *DB) Close() error {
	if db.faults.check() != nil {
		return db.closeFaulted()
	}
	if err := db.bdb.Close(); err != nil {
		return fmt.Errorf("kv: close: %w", err)
	}
	return nil
}

// View runs fn in a read-only snapshot. After a storage fault it fails
// with ErrFaulted.
func (db *DB) View(fn func(*Txn) error) error {
	if err := db.faults.check(); err != nil {
		return err
	}
	return db.bdb.View(func(t *badger.Txn) error { return fn(&Txn{t: t}) })
}

// Update runs fn in a read-write transaction and commits it atomically: all of
// fn's writes land, or none do. A transaction may hold at most about 15% of the
// profile's memtable size. A commit Badger cannot write is a storage fault:
// it and every later transaction fail with ErrFaulted (fault.go).
func (db *DB) Update(fn func(*Txn) error) error {
	if err := db.faults.check(); err != nil {
		return err
	}
	// badger.DB.Update, but with the commit alone under the GC lock (fn
	// may run for a while, and may itself read).
	t := db.bdb.NewTransaction(true)
	defer t.Discard()
	if err := fn(&Txn{t: t}); err != nil {
		return err
	}
	db.gc.RLock()
	err := t.Commit()
	db.gc.RUnlock()
	if commitFault(err) {
		db.faults.set(err)
		return db.faults.check()
	}
	if err == nil {
		db.commits.Add(1)
	}
	return err
}

// RunGC rewrites one value-log file of which at least half is garbage, if
// Badger knows of one (it learns what is garbage from compactions), and
// reports whether it did. Run it again while it does. After a storage
// fault it fails with ErrFaulted: GC rewrites entries, and a write into
// Badger after its fault ends the process (fault.go).
func (db *DB) RunGC() (bool, error) {
	if err := db.faults.check(); err != nil {
		return false, err
	}
	db.gc.Lock()
	defer db.gc.Unlock()
	err := db.bdb.RunValueLogGC(0.5)
	if errors.Is(err, badger.ErrNoRewrite) || errors.Is(err, badger.ErrRejected) {
		return false, nil // no such file, or a pass already under way
	}
	if err != nil {
		return false, fmt.Errorf("kv: value-log GC: %w", err)
	}
	return true, nil
}

// ValueThreshold is the value size from which values are kept in the value
// log rather than in the LSM tree.
func (db *DB) ValueThreshold() int64 { return db.bdb.Opts().ValueThreshold }

// ValueLogFileSize is the size of one value-log file.
func (db *DB) ValueLogFileSize() int64 { return db.bdb.Opts().ValueLogFileSize }

// Version grows with every committed write transaction, so a caller can
// tell whether anything may have been written since it last looked.
// (Badger's MaxVersion would do, but it reads the memtable's version
// without the lock its writer holds: a data race.)
func (db *DB) Version() uint64 { return db.commits.Load() }

// Size reports the on-disk size of the LSM tree and value log, in bytes.
func (db *DB) Size() (lsm, vlog int64) { return db.bdb.Size() }

type badgerLogger struct{ l *slog.Logger }

func (b badgerLogger) Errorf(f string, a ...any) {
	if b.l != nil {
		b.l.Error(fmt.Sprintf(f, a...), "component", "badger")
	}
}
func (b badgerLogger) Warningf(f string, a ...any) {
	if b.l != nil {
		b.l.Warn(fmt.Sprintf(f, a...), "component", "badger")
	}
}
func (badgerLogger) Infof(string, ...any)  {}
func (badgerLogger) Debugf(string, ...any) {}

// badgerOptions are Badger's options for profile p in dir (without a
// logger, and before the 32-bit adjustment of arch32.go).
func badgerOptions(dir string, p Profile, syncWrites bool) badger.Options {
	bo := badger.DefaultOptions(dir).
		WithSyncWrites(syncWrites).
		WithMemTableSize(p.MemTableSize).
		WithNumMemtables(p.NumMemtables).
		WithNumLevelZeroTables(p.NumMemtables).
		WithNumLevelZeroTablesStall(p.NumMemtables * 4).
		WithBlockCacheSize(p.BlockCacheSize).
		WithIndexCacheSize(p.IndexCacheSize).
		WithValueLogFileSize(p.ValueLogFileSize).
		WithNumCompactors(p.NumCompactors).
		WithValueThreshold(p.ValueThreshold).
		// Verify each table's checksums when it is opened (also right
		// after a flush or compaction writes it) and each block's when it
		// is read: corruption is an error, never silently missing data.
		WithChecksumVerificationMode(options.OnTableAndBlockRead).
		// And each value-log entry's when it is read: values above the
		// threshold (events' JSON, mostly) live there, and without it a
		// changed byte on disk read as another value.
		WithVerifyValueChecksum(true)
	if p.TableSize > 0 {
		bo = bo.WithBaseTableSize(p.TableSize)
	}
	if p.BlockCacheSize == 0 {
		// Compression with a zero block cache panics in Badger.
		bo = bo.WithCompression(options.None)
	}
	return bo
}
