package simulation

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/edgenode/edgenode/app"
	"github.com/edgenode/edgenode/p2ptransport"
)

// quicNetwork is ModeQUIC: each node runs p2ptransport's own libp2p host
// on 127.0.0.1 and is given the running nodes as static peers. It cannot
// partition, and does not count traffic.
type quicNetwork struct{}

func (quicNetwork) p2p(int) *app.P2PConfig {
	return &app.P2PConfig{Config: p2ptransport.Config{ListenAddrs: []string{"/ip4/127.0.0.1/udp/0/quic-v1"}}}
}

func (quicNetwork) started(ctx context.Context, i int, a *app.App, running map[int]*app.App) error {
	var errs []error
	for j, b := range running {
		if j == i {
			continue
		}
		for _, addr := range b.PeerAddrs() {
			if strings.Contains(addr, "/quic-v1/") {
				if err := a.Connect(ctx, addr); err != nil {
					errs = append(errs, fmt.Errorf("node %d to %d: %w", i, j, err))
				}
				break
			}
		}
	}
	return errors.Join(errs...)
}

func (quicNetwork) stopped(int) {}

func (quicNetwork) partition([]int, map[int]*app.App) error {
	return errors.New("partitions need -mode mocknet")
}

func (quicNetwork) heal(context.Context, map[int]*app.App) error { return nil }

func (quicNetwork) traffic(int) Traffic { return Traffic{} }

func (quicNetwork) close() error { return nil }
