package kv

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
)

// Stream hands out stream positions (1, 2, 3, ...) and commits the writes that
// go with each position in the same transaction as the position itself, under
// one lock. Readers that use Current therefore never see position N+1 before N
// is on disk, and a crash never leaves a position allocated without its data.
//
// Badger's own Sequence leases ranges outside transactions, so positions have
// gaps after a restart and can be visible before the data they number; this
// counter lives inside the commit instead.
type Stream struct {
	db   *DB
	key  []byte
	mu   sync.Mutex
	last atomic.Uint64
}

// Stream opens the named stream, loading its last committed position. Open
// each stream once per DB and share it: two Stream values for one name would
// hand out the same positions.
func (db *DB) Stream(name string) (*Stream, error) {
	s := &Stream{db: db, key: Key("stream", name)}
	err := db.View(func(tx *Txn) error {
		b, err := tx.Get(s.key)
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if len(b) != 8 {
			return fmt.Errorf("kv: stream %s: bad counter", name)
		}
		s.last.Store(binary.BigEndian.Uint64(b))
		return nil
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// Current is the last committed position (0 before the first commit).
func (s *Stream) Current() uint64 { return s.last.Load() }

// Commit allocates n consecutive positions (first..first+n-1), runs fn in one
// transaction with the first of them, and commits. If fn or the commit fails,
// no position is used.
func (s *Stream) Commit(n int, fn func(tx *Txn, first uint64) error) (uint64, error) {
	if n < 0 {
		return 0, errors.New("kv: negative position count")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	first := s.last.Load() + 1
	next := first + uint64(n) - 1
	err := s.db.Update(func(tx *Txn) error {
		if err := fn(tx, first); err != nil {
			return err
		}
		return tx.Set(s.key, binary.BigEndian.AppendUint64(nil, next))
	})
	if err != nil {
		return 0, err
	}
	s.last.Store(next)
	return first, nil
}
