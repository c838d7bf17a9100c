package mobile

import "sync"

// dispatcher calls the app's listeners from a goroutine of its own, in
// order, so that the node never waits for the app and a listener may call
// back into Node (even Stop) without deadlocking. Its queue is bounded:
// when the app is slower than the node, further calls are dropped and
// counted. The goroutine exists only while there is something to deliver.
type dispatcher struct {
	max int

	mu      sync.Mutex // guards the fields below
	queue   []func()
	running bool
	dropped int64
}

func newDispatcher(max int) *dispatcher { return &dispatcher{max: max} }

// post queues fn; it never blocks. It reports false if the queue was full.
func (d *dispatcher) post(fn func()) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.queue) >= d.max {
		d.dropped++
		return false
	}
	d.queue = append(d.queue, fn)
	if !d.running {
		d.running = true
		go d.run()
	}
	return true
}

func (d *dispatcher) run() {
	for {
		d.mu.Lock()
		if len(d.queue) == 0 {
			d.running = false
			d.queue = nil // let a burst's backing array go
			d.mu.Unlock()
			return
		}
		fn := d.queue[0]
		d.queue[0] = nil
		d.queue = d.queue[1:]
		d.mu.Unlock()
		func() {
			// The app's panic must not take the node down.
			defer swallowed()
			fn()
		}()
	}
}

// droppedCount is how many calls were dropped.
func (d *dispatcher) droppedCount() int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.dropped
}
