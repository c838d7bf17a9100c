package kv

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/dgraph-io/badger/v4"
)

// Memtable logs written with a larger memtable than the profile's.
//
// Badger keeps each memtable's entries in a write-ahead log (.mem) until the
// memtable is flushed to a table; a clean Close flushes them, but after a
// crash or a kill (which is how Android often ends an app) the logs stay and
// are replayed at the next Open into memtables of the size configured then.
// Badger does not check that they fit: an entry past the arena's end is an
// assertion, which exits the process (log.Fatal). So once a profile's
// memtable shrinks (8 MiB to 2 MiB for the phone, 4 MiB for the pi), a
// database killed under the old size would never open again.
//
// From our side: the memtable size each Open uses is recorded in the
// directory (memtableFile). When the recorded size (or, for a directory
// from before the record, the larger of 8 MiB, the phone and pi size then,
// and half the largest log, which Badger creates at twice the memtable
// size) is above the profile's and memtable logs exist, Open first opens
// the database with the recorded size and closes it, which replays and
// flushes the logs, and only then opens it with the profile's.

// memtableFile records the memtable size the directory's logs were written with.
const memtableFile = "EDGENODE-MEMTABLE"

// legacyMemTableSize is the memtable size of every profile before the
// record existed (the server profile's was, and is, larger).
const legacyMemTableSize = 8 << 20

// memLogs returns the number of memtable logs in dir and the largest one's size.
func memLogs(dir string) (n int, largest int64, err error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, fmt.Errorf("kv: %w", err)
	}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".mem") {
			continue
		}
		info, err := e.Info()
		if err != nil {
			return 0, 0, fmt.Errorf("kv: %w", err)
		}
		n++
		largest = max(largest, info.Size())
	}
	return n, largest, nil
}

// writtenMemTableSize is the memtable size the logs in dir were written
// with, as far as the directory tells; 0 if it holds no logs.
func writtenMemTableSize(dir string) (int64, error) {
	n, largest, err := memLogs(dir)
	if err != nil || n == 0 {
		return 0, err
	}
	raw, err := os.ReadFile(filepath.Join(dir, memtableFile))
	if errors.Is(err, fs.ErrNotExist) {
		return max(legacyMemTableSize, largest/2), nil
	}
	if err != nil {
		return 0, fmt.Errorf("kv: %w", err)
	}
	size, err := strconv.ParseInt(strings.TrimSpace(string(raw)), 10, 64)
	if err != nil || size <= 0 {
		return 0, fmt.Errorf("kv: %s: bad memtable size %q", memtableFile, raw)
	}
	return size, nil
}

// recordMemTableSize writes size to dir's record, atomically (a new file
// renamed over the old), so a crash leaves the old record or the new one.
func recordMemTableSize(dir string, size int64) error {
	path := filepath.Join(dir, memtableFile)
	if raw, err := os.ReadFile(path); err == nil && strings.TrimSpace(string(raw)) == strconv.FormatInt(size, 10) {
		return nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("kv: %w", err)
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("kv: %w", err)
	}
	_, err = fmt.Fprintf(f, "%d\n", size)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		return fmt.Errorf("kv: recording the memtable size: %w", err)
	}
	return nil
}

// flushLargerMemLogs replays and flushes the memtable logs in bo.Dir if they
// were written with a memtable larger than bo's, opening the database once
// with the size they were written with (adjust gives the options the
// platform needs for that size, and prepares the directory for them), then
// records bo's size.
func flushLargerMemLogs(bo badger.Options, adjust func(badger.Options) (badger.Options, error)) error {
	written, err := writtenMemTableSize(bo.Dir)
	if err != nil {
		return err
	}
	if written > bo.MemTableSize {
		old, err := adjust(bo.WithMemTableSize(written))
		if err != nil {
			return err
		}
		bdb, err := badger.Open(old)
		if err != nil {
			return fmt.Errorf("kv: open %s to flush memtables of %d bytes: %w", bo.Dir, written, err)
		}
		if err := bdb.Close(); err != nil {
			return fmt.Errorf("kv: flush memtables of %d bytes in %s: %w", written, bo.Dir, err)
		}
	}
	return recordMemTableSize(bo.Dir, bo.MemTableSize)
}
