package core

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestKeyedLocks: one key's holder never delays another key, the same key
// waits (and gives up with its context), and nothing is left in the map.
func TestKeyedLocks(t *testing.T) {
	k := newKeyedLocks()
	ctx := context.Background()
	unlockA, err := k.Lock(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	unlockB, err := k.Lock(ctx, "b") // must not wait for a
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel()
	if _, err := k.Lock(short, "a"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second lock of a held key: %v, want the context's deadline", err)
	}
	got := make(chan struct{})
	go func() {
		unlock, err := k.Lock(ctx, "a")
		if err == nil {
			unlock()
		}
		close(got)
	}()
	unlockA()
	<-got
	unlockB()
	if n := k.size(); n != 0 {
		t.Fatalf("%d keys left after every lock was released", n)
	}
}
