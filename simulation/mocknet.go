package simulation

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"sync"

	"github.com/edgenode/edgenode/app"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	ma "github.com/multiformats/go-multiaddr"
)

// mockNetwork is ModeMocknet: every pair of nodes on the same side of any
// partition is linked with the scenario's latency and bandwidth.
type mockNetwork struct {
	mn mocknet.Mocknet

	mu       sync.Mutex
	ids      map[int]peer.ID
	cut      map[int]bool // nodes in the partitioned group
	counters map[int]*counters
}

func newMockNetwork(s Scenario) *mockNetwork {
	mn := mocknet.New()
	mn.SetLinkDefaults(mocknet.LinkOptions{Latency: s.Latency, Bandwidth: s.Bandwidth})
	return &mockNetwork{mn: mn, ids: map[int]peer.ID{}, cut: map[int]bool{}, counters: map[int]*counters{}}
}

func (m *mockNetwork) p2p(i int) *app.P2PConfig {
	return &app.P2PConfig{NewHost: func(key ed25519.PrivateKey) (host.Host, error) {
		sk, _, err := crypto.KeyPairFromStdKey(&key)
		if err != nil {
			return nil, fmt.Errorf("key: %w", err)
		}
		// The address only names the peer inside mocknet.
		addr, err := ma.NewMultiaddr(fmt.Sprintf("/ip4/10.0.%d.%d/tcp/4001", i/250, i%250+1))
		if err != nil {
			return nil, err
		}
		h, err := m.mn.AddPeer(sk, addr)
		if err != nil {
			return nil, fmt.Errorf("mocknet peer: %w", err)
		}
		m.mu.Lock()
		defer m.mu.Unlock()
		m.ids[i] = h.ID()
		c := m.counters[i]
		if c == nil {
			c = &counters{}
			m.counters[i] = c
		}
		return &countingHost{Host: h, c: c, remote: m.countersOf}, nil
	}}
}

// reachable reports whether i and j are on the same side of the partition.
func (m *mockNetwork) reachable(i, j int) bool { return m.cut[i] == m.cut[j] }

func (m *mockNetwork) started(ctx context.Context, i int, _ *app.App, running map[int]*app.App) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for j := range running {
		if j == i || !m.reachable(i, j) {
			continue
		}
		if err := m.link(ctx, i, j); err != nil {
			return err
		}
	}
	return nil
}

// link (re)links i and j, replacing links to an earlier incarnation of
// either, and connects them.
func (m *mockNetwork) link(ctx context.Context, i, j int) error {
	a, b := m.ids[i], m.ids[j]
	_ = m.mn.UnlinkPeers(a, b) // none yet is fine
	if _, err := m.mn.LinkPeers(a, b); err != nil {
		return fmt.Errorf("link %d-%d: %w", i, j, err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if _, err := m.mn.ConnectPeers(a, b); err != nil {
		return fmt.Errorf("connect %d-%d: %w", i, j, err)
	}
	return nil
}

func (m *mockNetwork) stopped(i int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for j, id := range m.ids {
		if j != i {
			// Dials to a closed mock peer must fail, not hang.
			_ = m.mn.UnlinkPeers(m.ids[i], id)
		}
	}
}

func (m *mockNetwork) partition(group []int, running map[int]*app.App) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, i := range group {
		m.cut[i] = true
	}
	var errs []error
	for i := range m.ids {
		for j := range m.ids {
			if i < j && !m.reachable(i, j) {
				_ = m.mn.UnlinkPeers(m.ids[i], m.ids[j])
				if running[i] != nil && running[j] != nil {
					errs = append(errs, m.mn.DisconnectPeers(m.ids[i], m.ids[j]))
				}
			}
		}
	}
	return errors.Join(errs...)
}

func (m *mockNetwork) heal(ctx context.Context, running map[int]*app.App) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	was := m.cut
	m.cut = map[int]bool{}
	for i := range running {
		for j := range running {
			if i < j && was[i] != was[j] {
				if err := m.link(ctx, i, j); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func (m *mockNetwork) traffic(i int) Traffic {
	m.mu.Lock()
	c := m.counters[i]
	m.mu.Unlock()
	if c == nil {
		return Traffic{}
	}
	return c.snapshot()
}

// countersOf finds a node's counters by its peer ID.
func (m *mockNetwork) countersOf(p peer.ID) *counters {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, id := range m.ids {
		if id == p {
			return m.counters[i]
		}
	}
	return nil
}

func (m *mockNetwork) close() error { return m.mn.Close() }
