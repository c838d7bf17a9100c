package kv_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/edgenode/edgenode/kv"
)

// copyDir copies the regular files of src into a new directory: with the
// database still open, a picture of it as a kill would leave it (the
// memtable logs are written through shared mappings, so reading them sees
// what was written).
func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		in, err := os.Open(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out, err := os.Create(filepath.Join(dst, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(out, in); err != nil {
			t.Fatal(err)
		}
		in.Close()
		if err := out.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// TestOpenKilledWithLargerMemtable kills (a picture of) a database holding
// about 6 MiB of unflushed memtable, written with the 8 MiB memtables the
// phone profile had before, and opens it with today's phone profile (2 MiB):
// Badger alone replays the logs into memtables too small for them and exits
// the process; Open must flush them first and lose nothing. Once with the
// memtable size recorded, once as a directory from before the record.
func TestOpenKilledWithLargerMemtable(t *testing.T) {
	phone, err := kv.ProfileByName("phone")
	if err != nil {
		t.Fatal(err)
	}
	old := phone
	old.MemTableSize = 8 << 20
	const keys = 20000
	value := make([]byte, 200) // below the value threshold: in the memtable
	for _, tc := range []struct {
		name         string
		removeRecord bool
	}{{"recorded", false}, {"no record", true}} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			db, err := kv.Open(ctx, kv.Options{Dir: dir, Profile: old, NoSyncWrites: true})
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < keys; i += 500 {
				err := db.Update(func(tx *kv.Txn) error {
					for j := i; j < i+500; j++ {
						if err := tx.Set(kv.Key("t", fmt.Sprintf("key %06d", j)), value); err != nil {
							return err
						}
					}
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
			}
			killed := copyDir(t, dir)
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			if tc.removeRecord {
				if err := os.Remove(filepath.Join(killed, "EDGENODE-MEMTABLE")); err != nil {
					t.Fatal(err)
				}
			}
			db, err = kv.Open(ctx, kv.Options{Dir: killed, Profile: phone})
			if err != nil {
				t.Fatalf("open with the phone profile: %v", err)
			}
			defer db.Close()
			n := 0
			err = db.View(func(tx *kv.Txn) error {
				return tx.Each(kv.Scan{Prefix: kv.Key("t"), KeysOnly: true}, func(_, _ []byte) (bool, error) {
					n++
					return true, nil
				})
			})
			if err != nil || n != keys {
				t.Fatalf("after the reopen: %d keys, %v; want %d", n, err, keys)
			}
		})
	}
}
