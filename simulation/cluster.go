package simulation

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgenode/edgenode/app"
	"github.com/edgenode/edgenode/node/core"
)

// simNode is one node of a run: its data directory survives restarts.
type simNode struct {
	idx    int
	dir    string
	server string // Matrix server name, fixed by the key in dir
	userID string
	token  string
	rooms  []int // rooms joined so far
	starts int

	app       *app.App // nil while stopped
	stopWatch context.CancelFunc
	watchDone chan struct{}
}

// cluster is the set of nodes and the network between them.
type cluster struct {
	s   Scenario
	net netMode
	rec *recorder
	log *slog.Logger
	hc  *http.Client

	// foundInStore counts pairs first found by a check, not by /sync.
	foundInStore atomic.Int64

	mu      sync.Mutex // guards nodes' app, rooms and the running map
	nodes   []*simNode
	roomIDs []string
}

// running returns the running nodes' apps by index.
func (c *cluster) running() map[int]*app.App {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[int]*app.App{}
	for _, n := range c.nodes {
		if n.app != nil {
			out[n.idx] = n.app
		}
	}
	return out
}

// start starts (or restarts) node i from its data directory, links it and
// starts its sync watcher.
func (c *cluster) start(ctx context.Context, i int) error {
	n := c.nodes[i]
	a, err := app.Start(ctx, app.Config{
		ClientListen: "127.0.0.1:0",
		Node: core.Config{
			DataDir: n.dir, StorageProfile: "phone",
			// The simulation measures the network, not fsync; a crash of
			// the process ends the run anyway.
			NoSyncWrites: true,
			Logger:       c.log.With("node", i),
		},
		P2P: c.net.p2p(i),
	})
	if err != nil {
		return fmt.Errorf("start node %d: %w", i, err)
	}
	if n.userID == "" {
		acc, err := a.CreateAccount(ctx, fmt.Sprintf("user%d", i), "", "")
		if err != nil {
			return fmt.Errorf("register on node %d: %w", i, err)
		}
		n.userID, n.token, n.server = acc.UserID, acc.AccessToken, a.ServerName()
	}
	running := c.running()
	c.mu.Lock()
	n.app = a
	n.starts++
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	n.stopWatch, n.watchDone = cancel, make(chan struct{})
	c.mu.Unlock()
	go c.watch(wctx, n, a.BaseURL(), n.watchDone)
	if err := c.net.started(ctx, i, a, running); err != nil {
		return fmt.Errorf("link node %d: %w", i, err)
	}
	return nil
}

// stop closes node i, keeping its data directory.
func (c *cluster) stop(ctx context.Context, i int) error {
	n := c.nodes[i]
	c.mu.Lock()
	a, cancel, done := n.app, n.stopWatch, n.watchDone
	n.app = nil
	c.mu.Unlock()
	if a == nil {
		return nil
	}
	cancel()
	<-done
	cctx, ccancel := context.WithTimeout(ctx, closeGrace)
	defer ccancel()
	err := a.Close(cctx)
	c.net.stopped(i)
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("stop node %d: %w", i, err)
	}
	return nil
}

// closeGrace bounds how long a stopping node lets requests finish. Mocknet
// streams ignore read deadlines, so net/http's Shutdown waits on every
// kept-alive federation stream until its peer speaks again; past the
// grace, Close goes on to close the host, which ends those streams.
const closeGrace = 3 * time.Second

// stopAll closes every running node, in parallel.
func (c *cluster) stopAll(ctx context.Context) error {
	errs := make([]error, len(c.nodes))
	var wg sync.WaitGroup
	for i := range c.nodes {
		wg.Go(func() { errs[i] = c.stop(ctx, i) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// newCluster prepares the nodes' directories under dir.
func newCluster(s Scenario, net netMode, rec *recorder, log *slog.Logger, dir string) *cluster {
	c := &cluster{s: s, net: net, rec: rec, log: log,
		hc: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}}
	for i := range s.Nodes {
		c.nodes = append(c.nodes, &simNode{idx: i, dir: filepath.Join(dir, fmt.Sprintf("node%02d", i))})
	}
	return c
}
