package core

import (
	"context"
	"sync"
)

// keyedLocks serialises work per key (an inbound origin) with a lock of its
// own for each key. Striped locks would let an origin whose work takes long
// (a hostile peer that answers its own gap-filling slowly, for up to
// inboundTxnTimeout) hold up every other origin hashed to its stripe; here
// only the same key waits. A key's entry exists only while its lock is held
// or waited for, so the map is bounded by the requests in flight, which the
// federation limits bound per peer and overall.
type keyedLocks struct {
	mu sync.Mutex
	m  map[string]*keyedLock
}

type keyedLock struct {
	ch   chanMutex
	refs int // holders and waiters
}

func newKeyedLocks() *keyedLocks { return &keyedLocks{m: map[string]*keyedLock{}} }

// Lock takes key's lock, or gives up when ctx is done; the returned func
// releases it.
func (k *keyedLocks) Lock(ctx context.Context, key string) (unlock func(), err error) {
	k.mu.Lock()
	l := k.m[key]
	if l == nil {
		l = &keyedLock{ch: make(chanMutex, 1)}
		k.m[key] = l
	}
	l.refs++
	k.mu.Unlock()
	release := func() {
		k.mu.Lock()
		if l.refs--; l.refs == 0 {
			delete(k.m, key)
		}
		k.mu.Unlock()
	}
	if err := l.ch.lock(ctx); err != nil {
		release()
		return nil, err
	}
	return func() { l.ch.Unlock(); release() }, nil
}

// size is the number of keys held or waited for.
func (k *keyedLocks) size() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.m)
}
