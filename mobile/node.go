package mobile

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/edgenode/edgenode/app"
	"github.com/edgenode/edgenode/internal/memguard"
	"github.com/edgenode/edgenode/node/core"
)

// Timeouts of the facade's methods: gomobile cannot pass a context, and an
// app's UI thread must not wait forever.
const (
	startTimeout   = 60 * time.Second // opening Badger replays its value log
	stopTimeout    = 30 * time.Second // in-flight requests get this long
	connectTimeout = 30 * time.Second
	accountTimeout = 30 * time.Second // bcrypt is slow on a phone
)

// ErrNotRunning is returned by methods that need a started node.
var ErrNotRunning = errors.New("mobile: node is not running")

// Node is an edgenode homeserver embedded in an app. Create it with
// NewNode, then Start it. Its methods are safe to call from any thread.
type Node struct {
	dataDir string
	cfg     config

	mu         sync.Mutex // guards the fields below; held across Start and Stop
	logger     Logger
	app        *app.App
	guard      *memguard.Guard // the profile's soft memory limit, while app runs (app.StartMemoryGuard)
	ifaceAddrs []netip.Addr    // SetInterfaceAddrs
	// eventsDroppedBefore are the new events the node dropped in earlier
	// runs (DroppedEvents).
	eventsDroppedBefore int64
	// dataDirCheck overrides core.DefaultDataDirCheckInterval (tests).
	dataDirCheck time.Duration

	lmu            sync.Mutex // guards the listeners; never held while one runs
	healthListener HealthListener
	eventListener  EventListener
	// healthCalls and eventCalls deliver listener calls (dispatch.go).
	healthCalls, eventCalls *dispatcher
}

// NewNode returns a stopped node keeping its key and database in dataDir
// (use the app's files directory, not a cache directory, which the OS may
// purge). configJSON is a JSON object; "" or "{}" takes every default.
// Keys: client_listen ("127.0.0.1:0"; loopback only), storage_profile
// ("phone", "pi" or "server"), open_registration, no_sync_writes,
// log_level ("debug", "info", "warn", "error"), no_p2p, p2p_listen (list of
// multiaddrs), peers (list of multiaddrs ending in /p2p/<peer ID>), mdns
// (default true), dht (default true), dht_mode, relays, relay_service,
// reachability, media_prefetch (default true; SetMediaPrefetch).
func NewNode(dataDir string, configJSON string) (n *Node, err error) {
	defer recovered(&err)
	if dataDir == "" {
		return nil, errors.New("mobile: a data directory is required")
	}
	cfg, err := parseConfig(configJSON)
	if err != nil {
		return nil, err
	}
	return &Node{dataDir: dataDir, cfg: cfg, healthCalls: newDispatcher(healthQueue), eventCalls: newDispatcher(eventQueue)}, nil
}

// SetLogger routes the node's logs to l (nil discards them). It takes
// effect at the next Start.
func (n *Node) SetLogger(l Logger) {
	defer swallowed()
	n.mu.Lock()
	defer n.mu.Unlock()
	n.logger = l
}

// slogger is the logger a Start passes to the node. Called with mu held.
func (n *Node) slogger() *slog.Logger {
	if n.logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	level, _ := parseLevel(n.cfg.LogLevel) // validated by NewNode
	return newLogger(n.logger, level)
}

// Start opens the database and starts serving the client API on loopback
// and, unless no_p2p, federation over libp2p. It returns once BaseURL
// answers. Starting a running node is an error. Unless client_listen fixes
// a port, the client API listens on the port it had at the last start
// (kept in the data directory), or on a new free one if that is taken.
func (n *Node) Start() (err error) {
	defer recovered(&err)
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.app != nil {
		if n.app.Running() {
			return errors.New("mobile: node is already running")
		}
		// It stopped by itself (OnStopped): wait for it to be closed.
		select {
		case <-n.app.Done():
		case <-time.After(stopTimeout):
			return errors.New("mobile: start: the node is still stopping")
		}
		n.forgetLocked()
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	p2p := n.cfg.p2p()
	if p2p != nil {
		p2p.InterfaceAddrs = n.ifaceAddrs
	}
	_, port, _ := net.SplitHostPort(n.cfg.ClientListen) // validated by NewNode
	a, err := app.Start(ctx, app.Config{
		Node: core.Config{
			DataDir:              n.dataDir,
			StorageProfile:       n.cfg.StorageProfile,
			OpenRegistration:     n.cfg.OpenRegistration,
			WebOrigins:           n.cfg.WebOrigins,
			NoSyncWrites:         n.cfg.NoSyncWrites,
			Logger:               n.slogger(),
			DataDirCheckInterval: n.dataDirCheck,
		},
		ClientListen:     n.cfg.ClientListen,
		StableClientPort: port == "0",
		P2P:              p2p,
		OnHealth:         n.onAppHealth,
		Media:            app.MediaConfig{NoPrefetch: !n.cfg.mediaPrefetch()},
	})
	if err != nil {
		return fmt.Errorf("mobile: start: %w", err)
	}
	n.app = a
	n.guard = app.StartMemoryGuard(n.cfg.StorageProfile, 0, a.TrimCaches, os.Getenv, n.slogger())
	n.hookEvents(a)
	return nil
}

// forgetLocked drops the app after it stopped, keeping its count of dropped
// events. Called with mu held.
func (n *Node) forgetLocked() {
	n.eventsDroppedBefore += n.app.NewEventsDropped()
	n.app = nil
	if n.guard != nil {
		n.guard.Stop()
		n.guard = nil
	}
}

// Stop shuts the node down gracefully (in-flight requests get up to 30
// seconds) and closes the database. Stopping a stopped node does nothing.
// A stopped node can be started again.
func (n *Node) Stop() (err error) {
	defer recovered(&err)
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.app == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
	defer cancel()
	a := n.app
	n.forgetLocked() // even on error: the database and listeners are closed as far as they could be
	if a.Err() != nil {
		return nil // it stopped by itself; OnStopped said why
	}
	if err := a.Close(ctx); err != nil {
		return fmt.Errorf("mobile: stop: %w", err)
	}
	return nil
}

// running returns the running app, or ErrNotRunning (also once the app
// stopped by itself).
func (n *Node) running() (*app.App, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.app == nil || !n.app.Running() {
		return nil, ErrNotRunning
	}
	return n.app, nil
}

// IsRunning reports whether the node is started and serving: false after
// Stop, and false as soon as it began to stop by itself (OnStopped).
func (n *Node) IsRunning() bool {
	defer swallowed()
	_, err := n.running()
	return err == nil
}

// BaseURL is the client API's base URL, e.g. http://127.0.0.1:41234, for
// the app's Matrix client; "" when the node is not running.
func (n *Node) BaseURL() string {
	defer swallowed()
	a, err := n.running()
	if err != nil {
		return ""
	}
	return a.BaseURL()
}

// ServerName is the node's Matrix server name (derived from its key, so
// it is the same across restarts); "" when the node is not running.
func (n *Node) ServerName() string {
	defer swallowed()
	a, err := n.running()
	if err != nil {
		return ""
	}
	return a.ServerName()
}

// marshal encodes v as a JSON string for the app.
func marshal(v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("mobile: encode: %w", err)
	}
	return string(b), nil
}
