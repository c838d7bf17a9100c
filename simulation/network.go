package simulation

import (
	"context"

	"github.com/edgenode/edgenode/app"
)

// Modes of Options.Mode.
const (
	// ModeMocknet links the nodes with go-libp2p's in-memory mocknet.
	ModeMocknet = "mocknet"
	// ModeQUIC runs real libp2p QUIC on 127.0.0.1 (no partitions).
	ModeQUIC = "quic"
)

// netMode is what a mode provides: libp2p hosts for starting nodes, the
// links between them, and traffic counts.
type netMode interface {
	// p2p returns the P2P configuration that starts node i.
	p2p(i int) *app.P2PConfig
	// started links a (re)started node i to the running nodes it may
	// reach and connects them, as discovery would.
	started(ctx context.Context, i int, a *app.App, running map[int]*app.App) error
	// stopped removes a stopped node's links.
	stopped(i int)
	// partition cuts group off from every other node.
	partition(group []int, running map[int]*app.App) error
	// heal restores all links and reconnects running nodes.
	heal(ctx context.Context, running map[int]*app.App) error
	// traffic is node i's federation traffic so far (zero if unmeasured).
	traffic(i int) Traffic
	close() error
}
