package kv_test

import (
	"bytes"
	"slices"
	"testing"

	"github.com/edgenode/edgenode/kv"
)

// TestDeleteScans runs the collect-then-delete helpers on a real database
// holding q/1..q/5 and r/1, and checks what they report and what is left.
func TestDeleteScans(t *testing.T) {
	q := func(i uint64) []byte { return kv.Key("q", i) }
	r1 := kv.Key("r", uint64(1))
	tests := []struct {
		name    string
		run     func(tx *kv.Txn) (int, bool, error)
		deleted int
		more    bool
		left    [][]byte
	}{
		{
			name: "first, all",
			run: func(tx *kv.Txn) (int, bool, error) {
				n, err := tx.DeleteFirst(kv.Scan{Prefix: kv.Key("q")}, 0)
				return n, false, err
			},
			deleted: 5, left: [][]byte{r1},
		},
		{
			name: "first, limited",
			run: func(tx *kv.Txn) (int, bool, error) {
				n, err := tx.DeleteFirst(kv.Scan{Prefix: kv.Key("q")}, 2)
				return n, false, err
			},
			deleted: 2, left: [][]byte{q(3), q(4), q(5), r1},
		},
		{
			name: "first, from",
			run: func(tx *kv.Txn) (int, bool, error) {
				n, err := tx.DeleteFirst(kv.Scan{Prefix: kv.Key("q"), From: q(4)}, 0)
				return n, false, err
			},
			deleted: 2, left: [][]byte{q(1), q(2), q(3), r1},
		},
		{
			name:    "up to, no limit",
			run:     func(tx *kv.Txn) (int, bool, error) { return tx.DeleteUpTo(kv.Scan{Prefix: kv.Key("q")}, 3, 0) },
			deleted: 3, left: [][]byte{q(4), q(5), r1},
		},
		{
			name:    "up to, stopped by the limit",
			run:     func(tx *kv.Txn) (int, bool, error) { return tx.DeleteUpTo(kv.Scan{Prefix: kv.Key("q")}, 4, 2) },
			deleted: 2, more: true, left: [][]byte{q(3), q(4), q(5), r1},
		},
		{
			name:    "up to, under the limit",
			run:     func(tx *kv.Txn) (int, bool, error) { return tx.DeleteUpTo(kv.Scan{Prefix: kv.Key("q")}, 1, 2) },
			deleted: 1, left: [][]byte{q(2), q(3), q(4), q(5), r1},
		},
		{
			name: "each, other keys and a scan that sees every key",
			run: func(tx *kv.Txn) (int, bool, error) {
				seen := 0
				n, err := tx.DeleteEach(kv.Scan{Prefix: kv.Key("q")}, func(k, v []byte, del func([]byte)) (bool, error) {
					seen++
					if bytes.Equal(k, q(1)) {
						del(q(2)) // the scan still visits q/2
						del(r1)   // outside the scan
					}
					if bytes.Equal(v, []byte("4")) {
						del(k)
					}
					return true, nil
				})
				if seen != 5 {
					t.Errorf("scan saw %d keys, want 5", seen)
				}
				return n, false, err
			},
			deleted: 3, left: [][]byte{q(1), q(3), q(5)},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			db := openDB(t)
			err := db.Update(func(tx *kv.Txn) error {
				for i := uint64(1); i <= 5; i++ {
					if err := tx.Set(q(i), []byte{'0' + byte(i)}); err != nil {
						return err
					}
				}
				return tx.Set(r1, []byte("r"))
			})
			if err != nil {
				t.Fatal(err)
			}
			var deleted int
			var more bool
			err = db.Update(func(tx *kv.Txn) error {
				var err error
				deleted, more, err = tc.run(tx)
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			if deleted != tc.deleted || more != tc.more {
				t.Errorf("deleted %d (more %v), want %d (more %v)", deleted, more, tc.deleted, tc.more)
			}
			var left [][]byte
			err = db.View(func(tx *kv.Txn) error {
				return tx.Each(kv.Scan{}, func(k, _ []byte) (bool, error) {
					if !bytes.HasPrefix(k, []byte("stream")) {
						left = append(left, slices.Clone(k))
					}
					return true, nil
				})
			})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.EqualFunc(left, tc.left, bytes.Equal) {
				t.Errorf("left %q, want %q", left, tc.left)
			}
		})
	}
}

// TestCount counts the keys under prefixes of a real database.
func TestCount(t *testing.T) {
	db := openDB(t)
	err := db.Update(func(tx *kv.Txn) error {
		for _, k := range [][]byte{kv.Key("q", uint64(1)), kv.Key("q", uint64(2)), kv.Key("qq", uint64(1)), kv.Key("r", uint64(1))} {
			if err := tx.Set(k, []byte("v")); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		prefix []byte
		want   int
	}{{kv.Key("q"), 2}, {kv.Key("qq"), 1}, {kv.Key("r"), 1}, {kv.Key("s"), 0}, {nil, 4}} {
		if got, err := db.Count(tc.prefix); err != nil || got != tc.want {
			t.Errorf("Count(%q) = %d, %v; want %d", tc.prefix, got, err, tc.want)
		}
	}
}
