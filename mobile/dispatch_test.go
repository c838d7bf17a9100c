package mobile

import (
	"testing"
	"time"
)

// TestDispatcher: calls run in order on another goroutine; a panicking
// call does not stop the next; a full queue drops (and counts) without
// blocking the poster.
func TestDispatcher(t *testing.T) {
	d := newDispatcher(3)
	release := make(chan struct{})
	ran := make(chan int, 10)
	d.post(func() { <-release; ran <- 0 })
	// Wait until the first call is running, so the queue is empty.
	waitFor(t, func() bool { d.mu.Lock(); defer d.mu.Unlock(); return len(d.queue) == 0 }, func() string { return "first call not started" })
	d.post(func() { panic("the app's bug") })
	d.post(func() { ran <- 2 })
	d.post(func() { ran <- 3 })
	if d.post(func() { ran <- 4 }) {
		t.Fatal("a fourth call was queued behind a full queue of 3")
	}
	if d.droppedCount() != 1 {
		t.Fatalf("dropped %d, want 1", d.droppedCount())
	}
	close(release)
	for _, want := range []int{0, 2, 3} {
		select {
		case got := <-ran:
			if got != want {
				t.Fatalf("ran %d, want %d", got, want)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("call %d did not run", want)
		}
	}
}
