package node

import "sync"

// notifier tells waiting readers that the event stream advanced. Readers take
// the current channel, check the stream, then wait for the channel to close.
type notifier struct {
	mu sync.Mutex
	ch chan struct{}
}

func newNotifier() *notifier { return &notifier{ch: make(chan struct{})} }

// changed returns a channel that is closed at the next advance.
func (nt *notifier) changed() <-chan struct{} {
	nt.mu.Lock()
	defer nt.mu.Unlock()
	return nt.ch
}

func (nt *notifier) wake() {
	nt.mu.Lock()
	defer nt.mu.Unlock()
	close(nt.ch)
	nt.ch = make(chan struct{})
}
