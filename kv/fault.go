package kv

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// ErrFaulted is returned (wrapping the first fault) by every transaction
// after a storage fault: once Badger could not write, the database is not
// used again until it is reopened.
var ErrFaulted = errors.New("kv: storage faulted")

// faultCloseTimeout bounds Close after a fault. Badger's Close flushes the
// memtable and retries a failing flush every second forever, so on a
// directory it can no longer write Close would never return.
const faultCloseTimeout = 5 * time.Second

// faultLatch keeps the first storage fault. A fault is permanent for the
// life of the DB, because Badger v4.9.6 does not survive its own write
// errors: when it cannot create the next memtable file (directory gone,
// unwritable, disk full) it leaves its memtable nil, and the next write
// ends the process (y.AssertTrue -> log.Fatalf) while a read dereferences
// nil. Refusing every transaction from the first fault on is how we keep
// an app alive through it; commits already inside Badger at that moment
// are beyond our reach.
type faultLatch struct {
	once    sync.Once
	err     error
	done    chan struct{}
	onFault func(error)
}

func newFaultLatch(onFault func(error)) *faultLatch {
	return &faultLatch{done: make(chan struct{}), onFault: onFault}
}

// set records err as the fault unless one is recorded already.
func (f *faultLatch) set(err error) {
	f.once.Do(func() {
		f.err = err
		close(f.done)
		if f.onFault != nil {
			f.onFault(err)
		}
	})
}

// check returns the fault, wrapped in ErrFaulted, or nil.
func (f *faultLatch) check() error {
	select {
	case <-f.done:
		return fmt.Errorf("%w: %w", ErrFaulted, f.err)
	default:
		return nil
	}
}

// commitFault reports whether err, returned by Badger's commit after the
// transaction's own function succeeded, is a storage fault rather than an
// expected outcome: a conflict (the caller retries), or writes refused
// because the database is closing.
func commitFault(err error) bool {
	return err != nil && !errors.Is(err, badger.ErrConflict) &&
		!errors.Is(err, badger.ErrBlockedWrites) && !errors.Is(err, badger.ErrDBClosed)
}

// Fail records err as a storage fault found outside a commit (the data
// directory vanished or became unwritable): from now on every transaction
// fails with ErrFaulted. The first fault is kept.
func (db *DB) Fail(err error) {
	if err == nil {
		err = errors.New("unknown fault")
	}
	db.faults.set(err)
}

// Fault returns the first storage fault (wrapped in ErrFaulted), or nil
// while the database is healthy.
func (db *DB) Fault() error { return db.faults.check() }

// Faulted is closed at the first storage fault.
func (db *DB) Faulted() <-chan struct{} { return db.faults.done }

// closeFaulted closes a faulted database, giving up after
// faultCloseTimeout (Badger's close goroutines are then left behind: the
// app is expected to restart the process).
func (db *DB) closeFaulted() error {
	done := make(chan error, 1)
	go func() { done <- db.bdb.Close() }()
	t := time.NewTimer(faultCloseTimeout)
	defer t.Stop()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("kv: close after fault: %w", err)
		}
		return nil
	case <-t.C:
		return fmt.Errorf("kv: close after fault: Badger did not finish within %v (it cannot write its files): %w", faultCloseTimeout, db.faults.err)
	}
}
