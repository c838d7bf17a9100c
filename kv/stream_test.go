package kv_test

import (
	"errors"
	"runtime"
	"strconv"
	"sync"
	"testing"

	"github.com/edgenode/edgenode/kv"
)

// evKey is where the tests' stream commits write the data for position p.
func evKey(p uint64) []byte { return kv.Key("ev", p) }

// writeRange returns a Commit fn that writes val at every position it is given.
func writeRange(n int, val string) func(*kv.Txn, uint64) error {
	return func(tx *kv.Txn, first uint64) error {
		for p := first; p < first+uint64(n); p++ {
			if err := tx.Set(evKey(p), []byte(val)); err != nil {
				return err
			}
		}
		return nil
	}
}

func openStream(t testing.TB, db *kv.DB, name string) *kv.Stream {
	t.Helper()
	s, err := db.Stream(name)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestStreamCommit(t *testing.T) {
	tests := []struct {
		name      string
		counts    []int    // n for each Commit, in order
		wantFirst []uint64 // first position returned by each
		wantCur   uint64
	}{
		{"one at a time", []int{1, 1, 1}, []uint64{1, 2, 3}, 3},
		{"three from fresh", []int{3}, []uint64{1}, 3},
		{"three after two", []int{1, 1, 3, 1}, []uint64{1, 2, 3, 6}, 6},
		{"zero uses no position", []int{1, 0, 1}, []uint64{1, 2, 2}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := openDB(t)
			s := openStream(t, db, "s")
			if c := s.Current(); c != 0 {
				t.Fatalf("fresh Current = %d, want 0", c)
			}
			for i, n := range tt.counts {
				first, err := s.Commit(n, writeRange(n, strconv.Itoa(i)))
				if err != nil {
					t.Fatal(err)
				}
				if first != tt.wantFirst[i] {
					t.Fatalf("Commit #%d(n=%d) = %d, want %d", i, n, first, tt.wantFirst[i])
				}
				if c, want := s.Current(), first+uint64(n)-1; c != want {
					t.Fatalf("Current after Commit #%d(n=%d) = %d, want %d", i, n, c, want)
				}
			}
			if c := s.Current(); c != tt.wantCur {
				t.Fatalf("Current = %d, want %d", c, tt.wantCur)
			}
			for p := uint64(1); p <= tt.wantCur+1; p++ {
				if _, ok := get(t, db, evKey(p)); ok != (p <= tt.wantCur) {
					t.Errorf("data at %d present = %v, want %v", p, ok, p <= tt.wantCur)
				}
			}
		})
	}
}

func TestStreamCommitFails(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name string
		n    int
		fn   func(*kv.Txn, uint64) error
	}{
		{"error before writing", 1, func(*kv.Txn, uint64) error { return boom }},
		{"error after writing", 3, func(tx *kv.Txn, first uint64) error {
			if err := writeRange(3, "x")(tx, first); err != nil {
				return err
			}
			if err := tx.Set(kv.Key("other"), []byte("x")); err != nil {
				return err
			}
			return boom
		}},
		{"negative count", -1, func(*kv.Txn, uint64) error { return nil }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := openDB(t)
			s := openStream(t, db, "s")
			if _, err := s.Commit(1, writeRange(1, "ok")); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Commit(tt.n, tt.fn); err == nil {
				t.Fatal("Commit succeeded")
			}
			if c := s.Current(); c != 1 {
				t.Fatalf("Current = %d after failed Commit, want 1", c)
			}
			if c := openStream(t, db, "s").Current(); c != 1 {
				t.Fatalf("stored counter = %d after failed Commit, want 1", c)
			}
			for _, k := range [][]byte{evKey(2), evKey(3), evKey(4), kv.Key("other")} {
				if v, ok := get(t, db, k); ok {
					t.Errorf("%x = %q after failed Commit", k, v)
				}
			}
			if first, err := s.Commit(1, writeRange(1, "next")); err != nil || first != 2 {
				t.Fatalf("next Commit = %d, %v; want 2", first, err)
			}
		})
	}
}

func TestStreamPersists(t *testing.T) {
	dir := t.TempDir()
	db := openAt(t, dir)
	commits := map[string]int{"a": 5, "b": 2, "a\x00": 1}
	for name, n := range commits {
		s := openStream(t, db, name)
		for range n {
			if _, err := s.Commit(1, func(*kv.Txn, uint64) error { return nil }); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db = openAt(t, dir)
	defer db.Close()
	for _, name := range []string{"a", "b", "a\x00", "never"} {
		s := openStream(t, db, name)
		want := uint64(commits[name])
		if c := s.Current(); c != want {
			t.Errorf("stream %q: Current after re-open = %d, want %d", name, c, want)
		}
		if first, err := s.Commit(2, func(*kv.Txn, uint64) error { return nil }); err != nil || first != want+1 {
			t.Errorf("stream %q: Commit after re-open = %d, %v; want %d", name, first, err, want+1)
		}
	}
}

func TestStreamConcurrent(t *testing.T) {
	const writers, commitsEach = 8, 40
	db := openDB(t)
	s := openStream(t, db, "s")

	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		owner = map[uint64]string{} // position -> value written for it
	)
	for w := range writers {
		wg.Go(func() {
			n := 1 + w%3
			val := "w" + strconv.Itoa(w)
			for range commitsEach {
				first, err := s.Commit(n, writeRange(n, val))
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				for p := first; p < first+uint64(n); p++ {
					if prev, dup := owner[p]; dup {
						t.Errorf("position %d handed to %s and %s", p, prev, val)
					}
					owner[p] = val
				}
				mu.Unlock()
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()

	// The reader polls Current and must always find the data for the position
	// it saw, until the writers are finished.
	var polls, seen int
	failed := false
	for stop := false; !stop; polls++ {
		select {
		case <-done:
			stop = true
		default:
			runtime.Gosched()
		}
		cur := s.Current()
		if cur == 0 {
			continue
		}
		seen++
		if _, ok := get(t, db, evKey(cur)); !ok && !failed {
			t.Errorf("Current = %d but its data is not visible", cur)
			failed = true // keep polling until the writers finish
		}
	}

	var total uint64
	for w := range writers {
		total += uint64(commitsEach * (1 + w%3))
	}
	if c := s.Current(); c != total {
		t.Fatalf("Current = %d, want %d", c, total)
	}
	if len(owner) != int(total) {
		t.Fatalf("%d distinct positions, want %d", len(owner), total)
	}
	got := map[uint64]string{}
	err := db.View(func(tx *kv.Txn) error {
		return tx.Each(kv.Scan{Prefix: kv.Key("ev")}, func(k, v []byte) (bool, error) {
			p, err := kv.LastUint(k)
			got[p] = string(v)
			return true, err
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	for p := uint64(1); p <= total; p++ {
		if got[p] != owner[p] {
			t.Errorf("position %d holds %q, want %q", p, got[p], owner[p])
		}
	}
	if len(got) != int(total) {
		t.Errorf("%d positions written, want %d", len(got), total)
	}
	t.Logf("reader checked %d positions in %d polls", seen, polls)
}
