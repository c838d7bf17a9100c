package kv_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/edgenode/edgenode/kv"
)

// TestFaultLatches: the database directory is replaced by a file under an
// open database (as root, chmod would not stop writes; a file where the
// directory was stops them for root too: every file Badger creates there
// fails with ENOTDIR). Writes go on until Badger needs a new file and the
// commit fails. From then on every transaction fails with ErrFaulted
// without reaching Badger, whose next write after a failed memtable would
// end the process (y.AssertTrue -> log.Fatalf), and OnFault hears of the
// fault once. Before the latch, the write after the failure killed the
// test binary.
func TestFaultLatches(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "db")
	var faults atomic.Int32
	tiny := kv.Profile{
		Name: "tiny", MemTableSize: 1 << 20, NumMemtables: 2, BlockCacheSize: 1 << 20, IndexCacheSize: 1 << 20,
		ValueLogFileSize: 1 << 20, NumCompactors: 2, ValueThreshold: 1 << 10,
	}
	db, err := kv.Open(context.Background(), kv.Options{
		Dir: dir, Profile: tiny, NoSyncWrites: true,
		OnFault: func(error) { faults.Add(1) },
	})
	if err != nil {
		t.Fatal(err)
	}
	put := func(i int) error {
		return db.Update(func(tx *kv.Txn) error {
			return tx.Set(kv.Key("fault", i), bytes.Repeat([]byte{byte(i)}, 600))
		})
	}
	if err := put(0); err != nil {
		t.Fatal(err)
	}
	if db.Fault() != nil {
		t.Fatalf("fault before any: %v", db.Fault())
	}

	moved := dir + ".moved"
	if err := os.Rename(dir, moved); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir, []byte("not a directory"), 0o600); err != nil {
		t.Fatal(err)
	}
	restored := false
	restore := func() {
		if restored {
			return
		}
		restored = true
		if err := os.Remove(dir); err != nil {
			t.Error(err)
		}
		if err := os.Rename(moved, dir); err != nil {
			t.Error(err)
		}
	}
	defer restore()

	// A 1 MiB memtable holds about 1,500 of these: the bound is generous.
	var failed error
	for i := 1; i < 20000 && failed == nil; i++ {
		failed = put(i)
	}
	if failed == nil {
		t.Fatal("20,000 writes into a replaced directory all succeeded")
	}
	if !errors.Is(failed, kv.ErrFaulted) {
		t.Fatalf("failed commit: %v, want ErrFaulted", failed)
	}
	select {
	case <-db.Faulted():
	default:
		t.Fatal("Faulted not closed after a failed commit")
	}
	// The write after the failure: with Badger's memtable gone this ended
	// the process before the latch.
	if err := put(1 << 20); !errors.Is(err, kv.ErrFaulted) {
		t.Fatalf("write after the fault: %v, want ErrFaulted", err)
	}
	if err := db.View(func(*kv.Txn) error { return nil }); !errors.Is(err, kv.ErrFaulted) {
		t.Fatalf("read after the fault: %v, want ErrFaulted", err)
	}
	if _, err := db.RunGC(); !errors.Is(err, kv.ErrFaulted) {
		t.Fatalf("value-log GC after the fault: %v, want ErrFaulted", err)
	}
	db.Fail(errors.New("a second fault"))
	if n := faults.Load(); n != 1 {
		t.Fatalf("OnFault called %d times, want once", n)
	}
	// With the directory back, Badger's retried flush succeeds and Close
	// returns (kv bounds it either way).
	restore()
	_ = db.Close()
}
