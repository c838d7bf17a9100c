package kv_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"testing"

	"github.com/edgenode/edgenode/kv"
)

// openAt opens a phone-profile database in dir; the caller closes it.
func openAt(t testing.TB, dir string) *kv.DB {
	t.Helper()
	p, err := kv.ProfileByName("phone")
	if err != nil {
		t.Fatal(err)
	}
	db, err := kv.Open(context.Background(), kv.Options{Dir: dir, Profile: p})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// openDB opens a fresh database that is closed when the test ends.
func openDB(t testing.TB) *kv.DB {
	t.Helper()
	db := openAt(t, t.TempDir())
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Error(err)
		}
	})
	return db
}

func set(t testing.TB, db *kv.DB, kvs map[string][]byte) {
	t.Helper()
	err := db.Update(func(tx *kv.Txn) error {
		for k, v := range kvs {
			if err := tx.Set([]byte(k), v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// get returns the value at key, or nil and false if it is missing.
func get(t testing.TB, db *kv.DB, key []byte) ([]byte, bool) {
	t.Helper()
	var v []byte
	err := db.View(func(tx *kv.Txn) error {
		var err error
		v, err = tx.Get(key)
		return err
	})
	if errors.Is(err, kv.ErrNotFound) {
		return nil, false
	}
	if err != nil {
		t.Fatal(err)
	}
	return v, true
}

func TestMissingKey(t *testing.T) {
	db := openDB(t)
	key := kv.Key("t", "missing")
	err := db.View(func(tx *kv.Txn) error {
		if _, err := tx.Get(key); !errors.Is(err, kv.ErrNotFound) {
			t.Errorf("Get: err = %v, want ErrNotFound", err)
		}
		var v struct{}
		if err := tx.GetJSON(key, &v); !errors.Is(err, kv.ErrNotFound) {
			t.Errorf("GetJSON: err = %v, want ErrNotFound", err)
		}
		if ok, err := tx.Has(key); ok || err != nil {
			t.Errorf("Has = %v, %v; want false, nil", ok, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Deleting a missing key is not an error.
	if err := db.Update(func(tx *kv.Txn) error { return tx.Delete(key) }); err != nil {
		t.Fatalf("Delete missing: %v", err)
	}
}

func TestSetGetHasDelete(t *testing.T) {
	db := openDB(t)
	tests := []struct {
		name  string
		key   []byte
		value []byte
	}{
		{"empty value", kv.Key("t", "empty"), []byte{}},
		{"binary value", kv.Key("t", "bin\x00"), []byte{0, 1, 0xFF, 0}},
		{"value in value log", kv.Key("t", uint64(1)), bytes.Repeat([]byte("v"), 4096)},
		{"unicode key", kv.Key("表", "ключ"), []byte("значение")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set(t, db, map[string][]byte{string(tt.key): tt.value})
			if got, ok := get(t, db, tt.key); !ok || !bytes.Equal(got, tt.value) {
				t.Fatalf("Get = %q, %v; want %q", got, ok, tt.value)
			}
			err := db.Update(func(tx *kv.Txn) error {
				if ok, err := tx.Has(tt.key); !ok || err != nil {
					t.Errorf("Has = %v, %v; want true", ok, err)
				}
				if err := tx.Delete(tt.key); err != nil {
					return err
				}
				// The transaction sees its own delete.
				if ok, err := tx.Has(tt.key); ok || err != nil {
					t.Errorf("Has after Delete = %v, %v; want false", ok, err)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if got, ok := get(t, db, tt.key); ok {
				t.Fatalf("Get after Delete = %q, want ErrNotFound", got)
			}
		})
	}
}

func TestJSON(t *testing.T) {
	type rec struct {
		Name string   `json:"name"`
		N    uint64   `json:"n"`
		Tags []string `json:"tags"`
	}
	db := openDB(t)
	tests := []struct {
		name string
		in   rec
	}{
		{"zero", rec{}},
		{"full", rec{Name: "a\x00é", N: 1<<64 - 1, Tags: []string{"x", ""}}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := kv.Key("json", uint64(i))
			if err := db.Update(func(tx *kv.Txn) error { return tx.SetJSON(key, tt.in) }); err != nil {
				t.Fatal(err)
			}
			var out rec
			if err := db.View(func(tx *kv.Txn) error { return tx.GetJSON(key, &out) }); err != nil {
				t.Fatal(err)
			}
			if out.Name != tt.in.Name || out.N != tt.in.N || !slices.Equal(out.Tags, tt.in.Tags) {
				t.Fatalf("GetJSON = %+v, want %+v", out, tt.in)
			}
		})
	}
	t.Run("bad JSON", func(t *testing.T) {
		key := kv.Key("json", "bad")
		set(t, db, map[string][]byte{string(key): []byte("{not json")})
		var out rec
		err := db.View(func(tx *kv.Txn) error { return tx.GetJSON(key, &out) })
		if err == nil || errors.Is(err, kv.ErrNotFound) {
			t.Fatalf("GetJSON = %v, want a decode error", err)
		}
	})
	t.Run("unencodable", func(t *testing.T) {
		err := db.Update(func(tx *kv.Txn) error { return tx.SetJSON(kv.Key("json", "ch"), make(chan int)) })
		if err == nil {
			t.Fatal("SetJSON(chan) succeeded")
		}
	})
}

func TestUpdateAtomic(t *testing.T) {
	boom := errors.New("boom")
	var (
		kOld  = kv.Key("t", "old")
		kGone = kv.Key("t", "gone")
		kNew1 = kv.Key("t", "new1")
		kNew2 = kv.Key("t", "new2")
	)
	tests := []struct {
		name string
		fn   func(tx *kv.Txn) error
	}{
		{"error after writes", func(tx *kv.Txn) error {
			for _, k := range [][]byte{kNew1, kNew2, kOld} {
				if err := tx.Set(k, []byte("new")); err != nil {
					return err
				}
			}
			if err := tx.Delete(kGone); err != nil {
				return err
			}
			return boom
		}},
		{"wrapped error after SetJSON", func(tx *kv.Txn) error {
			if err := tx.SetJSON(kNew1, map[string]int{"a": 1}); err != nil {
				return err
			}
			return fmt.Errorf("wrapped: %w", boom)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := openDB(t)
			set(t, db, map[string][]byte{string(kOld): []byte("old"), string(kGone): []byte("here")})
			if err := db.Update(tt.fn); !errors.Is(err, boom) {
				t.Fatalf("Update = %v, want boom", err)
			}
			for _, k := range [][]byte{kNew1, kNew2} {
				if v, ok := get(t, db, k); ok {
					t.Errorf("%q = %q after failed Update", k, v)
				}
			}
			if v, _ := get(t, db, kOld); string(v) != "old" {
				t.Errorf("old = %q, want \"old\"", v)
			}
			if v, _ := get(t, db, kGone); string(v) != "here" {
				t.Errorf("gone = %q, want \"here\"", v)
			}
		})
	}
}

func TestEach(t *testing.T) {
	db := openDB(t)
	data := map[string][]byte{}
	put := func(k []byte, v string) { data[string(k)] = []byte(v) }
	positions := []uint64{0, 1, 2, 3, 255, 256, 1000, 1<<64 - 1}
	for _, p := range positions {
		put(kv.Key("a", p), strconv.FormatUint(p, 10))
		put(kv.Key("r", "room1", p), strconv.FormatUint(p, 10))
		// Neighbours of both prefixes, on either side.
		for _, table := range []string{"", "`", "a\x00", "ab", "b"} {
			put(kv.Key(table, p), "neighbour")
		}
		for _, room := range []string{"room", "room0", "room1\x00", "room10", "room2"} {
			put(kv.Key("r", room, p), "neighbour")
		}
	}
	put([]byte("a"), "raw neighbour")
	set(t, db, data)

	rev := func(s []uint64) []uint64 { s = slices.Clone(s); slices.Reverse(s); return s }
	tests := []struct {
		name  string
		scan  kv.Scan
		limit int // stop after this many keys; 0 means never
		want  []uint64
	}{
		{"forward", kv.Scan{Prefix: kv.Key("a")}, 0, positions},
		{"reverse", kv.Scan{Prefix: kv.Key("a"), Reverse: true}, 0, rev(positions)},
		{"forward keys only", kv.Scan{Prefix: kv.Key("a"), KeysOnly: true}, 0, positions},
		{"reverse keys only", kv.Scan{Prefix: kv.Key("a"), Reverse: true, KeysOnly: true}, 0, rev(positions)},
		{"forward from present key", kv.Scan{Prefix: kv.Key("a"), From: kv.Key("a", uint64(3))}, 0, []uint64{3, 255, 256, 1000, 1<<64 - 1}},
		{"forward from absent key", kv.Scan{Prefix: kv.Key("a"), From: kv.Key("a", uint64(4))}, 0, []uint64{255, 256, 1000, 1<<64 - 1}},
		{"forward from last", kv.Scan{Prefix: kv.Key("a"), From: kv.Key("a", uint64(1<<64-1))}, 0, []uint64{1<<64 - 1}},
		{"forward from past the prefix", kv.Scan{Prefix: kv.Key("a"), From: kv.Key("a\x00")}, 0, nil},
		{"reverse from present key", kv.Scan{Prefix: kv.Key("a"), Reverse: true, From: kv.Key("a", uint64(255))}, 0, []uint64{255, 3, 2, 1, 0}},
		{"reverse from absent key", kv.Scan{Prefix: kv.Key("a"), Reverse: true, From: kv.Key("a", uint64(254))}, 0, []uint64{3, 2, 1, 0}},
		{"reverse from first", kv.Scan{Prefix: kv.Key("a"), Reverse: true, From: kv.Key("a", uint64(0))}, 0, []uint64{0}},
		{"reverse from before the prefix", kv.Scan{Prefix: kv.Key("a"), Reverse: true, From: kv.Key("a")}, 0, nil},
		{"forward stops", kv.Scan{Prefix: kv.Key("a")}, 3, []uint64{0, 1, 2}},
		{"reverse stops", kv.Scan{Prefix: kv.Key("a"), Reverse: true}, 2, []uint64{1<<64 - 1, 1000}},
		{"forward from, stops", kv.Scan{Prefix: kv.Key("a"), From: kv.Key("a", uint64(2))}, 2, []uint64{2, 3}},
		{"reverse from, stops", kv.Scan{Prefix: kv.Key("a"), Reverse: true, From: kv.Key("a", uint64(1000))}, 2, []uint64{1000, 256}},
		{"stop after one", kv.Scan{Prefix: kv.Key("a"), Reverse: true}, 1, []uint64{1<<64 - 1}},
		{"nested forward", kv.Scan{Prefix: kv.Key("r", "room1")}, 0, positions},
		{"nested reverse", kv.Scan{Prefix: kv.Key("r", "room1"), Reverse: true}, 0, rev(positions)},
		{"nested forward from", kv.Scan{Prefix: kv.Key("r", "room1"), From: kv.Key("r", "room1", uint64(256))}, 0, []uint64{256, 1000, 1<<64 - 1}},
		{"nested reverse from", kv.Scan{Prefix: kv.Key("r", "room1"), Reverse: true, From: kv.Key("r", "room1", uint64(256))}, 0, []uint64{256, 255, 3, 2, 1, 0}},
		{"empty prefix", kv.Scan{Prefix: kv.Key("nothing")}, 0, nil},
		{"empty prefix reverse", kv.Scan{Prefix: kv.Key("nothing"), Reverse: true}, 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []uint64
			err := db.View(func(tx *kv.Txn) error {
				return tx.Each(tt.scan, func(k, v []byte) (bool, error) {
					if !bytes.HasPrefix(k, tt.scan.Prefix) {
						return false, fmt.Errorf("key %x outside prefix", k)
					}
					p, err := kv.LastUint(k)
					if err != nil {
						return false, err
					}
					want := strconv.FormatUint(p, 10)
					if tt.scan.KeysOnly {
						want = ""
					}
					if string(v) != want {
						return false, fmt.Errorf("value at %d = %q, want %q", p, v, want)
					}
					got = append(got, p)
					return tt.limit == 0 || len(got) < tt.limit, nil
				})
			})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}

	t.Run("error stops the scan", func(t *testing.T) {
		boom := errors.New("boom")
		calls := 0
		err := db.View(func(tx *kv.Txn) error {
			return tx.Each(kv.Scan{Prefix: kv.Key("a")}, func(k, v []byte) (bool, error) {
				calls++
				return true, boom
			})
		})
		if !errors.Is(err, boom) || calls != 1 {
			t.Fatalf("err = %v after %d calls, want boom after 1", err, calls)
		}
	})
	t.Run("inside Update", func(t *testing.T) {
		var got []uint64
		err := db.Update(func(tx *kv.Txn) error {
			if err := tx.Set(kv.Key("a", uint64(4)), []byte("4")); err != nil {
				return err
			}
			return tx.Each(kv.Scan{Prefix: kv.Key("a"), Reverse: true, From: kv.Key("a", uint64(255))}, func(k, _ []byte) (bool, error) {
				p, err := kv.LastUint(k)
				got = append(got, p)
				return true, err
			})
		})
		if err != nil {
			t.Fatal(err)
		}
		if want := []uint64{255, 4, 3, 2, 1, 0}; !slices.Equal(got, want) {
			t.Fatalf("got %v, want %v", got, want)
		}
	})
}
