package mobile

import (
	"github.com/edgenode/edgenode/app"
)

// healthQueue bounds undelivered health calls (they are rare; this only
// guards against an app that never returns from one).
const healthQueue = 64

// HealthListener hears of the node's health. An app implements it (in
// Java, Kotlin, Objective-C or Swift) and registers it with
// SetHealthListener. Its methods are called from a goroutine of the node's
// (not the app's main thread), one call at a time, in order; they may call
// back into Node.
type HealthListener interface {
	// OnHealthChanged: the node became unhealthy (healthy false; reason
	// says what fails: the client API's listener after iOS closed the
	// app's sockets, so call RebindClient; or less than 64 MiB left on the
	// data directory's disk, the way to OnStopped) or healthy again.
	OnHealthChanged(healthy bool, reason string)
	// OnStopped: the node stopped by itself because it can no longer keep
	// what it acknowledges: a storage fault (the data directory removed,
	// made unwritable, or the disk full). IsRunning is false from then on.
	// Start may be tried again once the cause is fixed; if the database
	// could not be closed cleanly the directory stays locked until the
	// app's process restarts.
	OnStopped(reason string)
}

// SetHealthListener registers l (nil removes it). It applies at once, to a
// running node too.
func (n *Node) SetHealthListener(l HealthListener) {
	defer swallowed()
	n.lmu.Lock()
	defer n.lmu.Unlock()
	n.healthListener = l
}

func (n *Node) currentHealthListener() HealthListener {
	n.lmu.Lock()
	defer n.lmu.Unlock()
	return n.healthListener
}

// onAppHealth is the app's OnHealth: it runs on the app's goroutines, so it
// only queues the call for the app.
func (n *Node) onAppHealth(ev app.HealthEvent) {
	n.healthCalls.post(func() {
		if ev.Stopped {
			n.forgetStopped()
		}
		l := n.currentHealthListener()
		if l == nil {
			return
		}
		if ev.Stopped {
			l.OnStopped(ev.Reason)
			return
		}
		l.OnHealthChanged(ev.Healthy, ev.Reason)
	})
}

// forgetStopped drops an app that stopped by itself, so Start may run
// again.
func (n *Node) forgetStopped() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.app != nil && !n.app.Running() {
		n.app = nil
	}
}

// IsHealthy reports whether the node is running with nothing failing.
func (n *Node) IsHealthy() bool {
	defer swallowed()
	a, err := n.running()
	if err != nil {
		return false
	}
	ok, _ := a.Healthy()
	return ok
}

// HealthReason says what fails ("" when healthy, "not running" when the
// node is not running).
func (n *Node) HealthReason() string {
	defer swallowed()
	a, err := n.running()
	if err != nil {
		return "not running"
	}
	_, reason := a.Healthy()
	return reason
}
