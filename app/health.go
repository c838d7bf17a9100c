package app

import (
	"context"
	"errors"
	"sort"
	"strings"
	"sync"
	"time"
)

// The app's health, for an embedding app (the mobile facade) that must tell
// its user when the node cannot do its job:
//
//   - a listener failing (the client API's after iOS reclaims a suspended
//     app's sockets, federation's when the libp2p host goes) makes the app
//     unhealthy until it is rebound (RebindClient);
//   - little free disk space (node.StorageWarning) makes it unhealthy
//     until there is room again;
//   - a storage fault (node.StorageFault: a commit Badger could not write,
//     the data directory gone or unwritable) stops the app: it closes
//     itself, and OnHealth hears Stopped with the fault.

// faultStopTimeout bounds the app's own Close after a storage fault
// (in-flight requests get this long; kv bounds the database's part).
const faultStopTimeout = 15 * time.Second

// Components named in HealthEvent.Reason.
const (
	componentClient     = "client API"
	componentFederation = "federation"
	componentStorage    = "storage"
)

// HealthEvent is a change of the app's health.
type HealthEvent struct {
	// Healthy: everything works. Otherwise Reason says what does not.
	Healthy bool
	Reason  string
	// Stopped: the app stopped by itself (it is closed; Close does nothing
	// more) because of Err, a storage fault. A Close asked for by the
	// embedder is not reported.
	Stopped bool
	Err     error
}

// health is an App's health state.
type health struct {
	deliver sync.Mutex // held while on runs: one call at a time, in order
	on      func(HealthEvent)

	mu       sync.Mutex // guards the fields below
	problems map[string]string
	cause    error // why the app stops by itself (set before it closes)
	done     chan struct{}
	isDone   bool
}

func newHealth(on func(HealthEvent)) *health {
	return &health{on: on, problems: map[string]string{}, done: make(chan struct{})}
}

// event is the current state as an event. Called with mu held.
func (h *health) event() HealthEvent {
	if len(h.problems) == 0 {
		return HealthEvent{Healthy: true}
	}
	reasons := make([]string, 0, len(h.problems))
	for _, r := range h.problems {
		reasons = append(reasons, r)
	}
	sort.Strings(reasons)
	return HealthEvent{Reason: strings.Join(reasons, "; ")}
}

// set records (reason != "") or clears a component's problem and tells
// OnHealth if the state changed.
func (h *health) set(component, reason string) {
	h.deliver.Lock()
	defer h.deliver.Unlock()
	h.mu.Lock()
	if h.isDone || h.problems[component] == reason {
		h.mu.Unlock()
		return
	}
	if reason == "" {
		delete(h.problems, component)
	} else {
		h.problems[component] = reason
	}
	ev := h.event()
	h.mu.Unlock()
	h.call(ev)
}

func (h *health) problem(component, reason string) { h.set(component, reason) }
func (h *health) fixed(component string)           { h.set(component, "") }

// call runs OnHealth, if any. The caller holds deliver.
func (h *health) call(ev HealthEvent) {
	if h.on == nil {
		return
	}
	defer func() { _ = recover() }() // the embedder's panic is not the app's
	h.on(ev)
}

// stopping records why the app is about to close itself.
func (h *health) stopping(cause error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.cause == nil {
		h.cause = cause
	}
}

// closed marks the app closed (Close calls it once).
func (h *health) closed() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.isDone {
		h.isDone = true
		close(h.done)
	}
}

// stopped tells OnHealth that the app stopped by itself.
func (h *health) stopped() {
	h.deliver.Lock()
	defer h.deliver.Unlock()
	h.mu.Lock()
	ev := HealthEvent{Stopped: true, Err: h.cause, Reason: "stopped: " + h.cause.Error()}
	h.mu.Unlock()
	h.call(ev)
}

// watchStorage follows the node's storage warnings, and stops the app when
// the node reports a storage fault.
func (a *App) watchStorage() {
	a.health.set(componentStorage, a.node.StorageWarning())
	go func() {
	wait:
		for {
			select {
			case <-a.node.StorageWarningChanged():
				a.health.set(componentStorage, a.node.StorageWarning())
			case <-a.node.StorageFaulted():
				break wait
			case <-a.health.done:
				return
			}
		}
		fault := a.node.StorageFault()
		if fault == nil { // cannot happen: Faulted is closed only with a fault
			fault = errors.New("storage fault")
		}
		a.log.Error("storage fault: the node stops", "err", fault)
		a.health.stopping(fault)
		ctx, cancel := context.WithTimeout(context.Background(), faultStopTimeout)
		defer cancel()
		if err := a.Close(ctx); err != nil {
			a.log.Warn("close after storage fault", "err", err)
		}
		a.health.stopped()
	}()
}

// Healthy reports whether the app is running with nothing failing, and if
// not, why.
func (a *App) Healthy() (bool, string) {
	a.health.mu.Lock()
	defer a.health.mu.Unlock()
	switch {
	case a.health.cause != nil:
		return false, "stopped: " + a.health.cause.Error()
	case a.health.isDone:
		return false, "closed"
	}
	ev := a.health.event()
	return ev.Healthy, ev.Reason
}

// Running reports whether the app is serving: false once it was closed or
// began to stop itself.
func (a *App) Running() bool {
	a.health.mu.Lock()
	defer a.health.mu.Unlock()
	return a.health.cause == nil && !a.health.isDone
}

// Done is closed once the app is closed, by Close or by itself.
func (a *App) Done() <-chan struct{} { return a.health.done }

// Err is the storage fault the app stopped itself for, or nil.
func (a *App) Err() error {
	a.health.mu.Lock()
	defer a.health.mu.Unlock()
	return a.health.cause
}
