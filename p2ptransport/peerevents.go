package p2ptransport

import "sync"

// peerEvents hands PeerEvents to one consumer without ever blocking libp2p
// and without losing a peer's latest state. While the consumer is behind,
// the events of one peer coalesce into its newest state (up, down), so what
// is held is bounded by the peers whose state changed since the consumer
// last read, not by how often they changed. A channel that dropped events
// when full could lose a PeerUp, leaving that peer's queue in backoff.
type peerEvents struct {
	out  chan PeerEvent
	wake chan struct{} // one slot: something is pending

	mu      sync.Mutex
	pending map[string]bool // server name -> newest Up not yet delivered
	order   []string        // the names in pending, oldest first
}

func newPeerEvents() *peerEvents {
	return &peerEvents{out: make(chan PeerEvent), wake: make(chan struct{}, 1), pending: map[string]bool{}}
}

// push records ev as its peer's newest state; it never blocks.
func (q *peerEvents) push(ev PeerEvent) {
	q.mu.Lock()
	if _, ok := q.pending[ev.ServerName]; !ok {
		q.order = append(q.order, ev.ServerName)
	}
	q.pending[ev.ServerName] = ev.Up
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// run delivers pending events on out, oldest peer first, until done is
// closed; then it closes out.
func (q *peerEvents) run(done <-chan struct{}) {
	defer close(q.out)
	for {
		q.mu.Lock()
		if len(q.order) == 0 {
			q.mu.Unlock()
			select {
			case <-q.wake:
				continue
			case <-done:
				return
			}
		}
		// Taken out before delivery: a change that comes meanwhile is
		// pending anew, delivered after ev.
		ev := PeerEvent{ServerName: q.order[0], Up: q.pending[q.order[0]]}
		delete(q.pending, ev.ServerName)
		q.order = q.order[1:]
		q.mu.Unlock()
		select {
		case q.out <- ev:
		case <-done:
			return
		}
	}
}

// held is the number of peers with an undelivered state.
func (q *peerEvents) held() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.pending)
}
