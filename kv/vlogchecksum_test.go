package kv

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestValueLogCorruptionIsAnError: a value stored in the value log (above
// the profile's value threshold) whose bytes on disk change reads as
// ErrCorrupt, by key and in a scan, never as other bytes or as an empty
// value. Without value checksums Badger returned the changed value as if it
// were the stored one; with them, an empty value and no error.
func TestValueLogCorruptionIsAnError(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	p, err := ProfileByName("phone")
	if err != nil {
		t.Fatal(err)
	}
	value := bytes.Repeat([]byte("edgenode-value-log "), 200) // 3,800 bytes: above the threshold
	db, err := Open(ctx, Options{Dir: dir, Profile: p, NoSyncWrites: true})
	if err != nil {
		t.Fatal(err)
	}
	key := Key("vlogcheck", "a")
	if err := db.Update(func(tx *Txn) error { return tx.Set(key, value) }); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	// Change one byte of the value where it lies in the value log.
	logs, err := filepath.Glob(filepath.Join(dir, "*.vlog"))
	if err != nil || len(logs) == 0 {
		t.Fatalf("value-log files: %v %v", logs, err)
	}
	changed := false
	for _, name := range logs {
		raw, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		i := bytes.Index(raw, value)
		if i < 0 {
			continue
		}
		raw[i+len(value)/2] ^= 0x20
		if err := os.WriteFile(name, raw, 0o600); err != nil {
			t.Fatal(err)
		}
		changed = true
	}
	if !changed {
		t.Fatal("the value is not in any value-log file (stored inline?)")
	}

	db, err = Open(ctx, Options{Dir: dir, Profile: p, NoSyncWrites: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var got []byte
	err = db.View(func(tx *Txn) (err error) {
		got, err = tx.Get(key)
		return err
	})
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Get of a changed value: %d bytes (equal to the stored ones: %v), error %v; want ErrCorrupt",
			len(got), bytes.Equal(got, value), err)
	}
	err = db.View(func(tx *Txn) error {
		return tx.Each(Scan{Prefix: Key("vlogcheck")}, func(_, v []byte) (bool, error) {
			got = v
			return true, nil
		})
	})
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("a scan over a changed value: %d bytes, error %v; want ErrCorrupt", len(got), err)
	}
}
