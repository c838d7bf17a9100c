package p2ptransport

import (
	"context"
	"crypto/hkdf"
	"crypto/sha256"
	"errors"
	"fmt"
	"net"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/libp2p/go-libp2p/core/sec"
	"github.com/libp2p/go-libp2p/core/transport"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	"github.com/libp2p/go-libp2p/p2p/net/upgrader"
	noise "github.com/libp2p/go-libp2p/p2p/security/noise"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/quicreuse"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	quicgo "github.com/quic-go/quic-go"
)

// This file builds a swarm (the connection layer) from explicit parts:
// QUIC and TCP, Noise, yamux. go-libp2p's root package would do it too, but
// linking it links every transport it offers (WebRTC through pion,
// WebTransport, WebSocket), and pion's anet breaks the Android link.

// swarmParts is a swarm with what it was built from that the swarm does not
// close itself.
type swarmParts struct {
	sw       *swarm.Swarm
	upgrader transport.Upgrader
	quic     *quicreuse.ConnManager // owns the QUIC UDP sockets; close after sw
}

// close closes the swarm, then the QUIC sockets under it.
func (p *swarmParts) close() error {
	return errors.Join(p.sw.Close(), p.quic.Close())
}

// newSwarm builds a swarm for the identity key with QUIC and TCP transports,
// Noise and yamux, accounting to rm. It does not listen.
func newSwarm(key crypto.PrivKey, ps peerstore.Peerstore, bus event.Bus, rm network.ResourceManager, opts ...swarm.Option) (*swarmParts, error) {
	pid, err := peer.IDFromPrivateKey(key)
	if err != nil {
		return nil, err
	}
	if err := ps.AddPrivKey(pid, key); err != nil {
		return nil, err
	}
	if err := ps.AddPubKey(pid, key.GetPublic()); err != nil {
		return nil, err
	}
	muxers := []upgrader.StreamMuxer{{ID: yamux.ID, Muxer: yamux.DefaultTransport}}
	nz, err := noise.New(noise.ID, key, muxers)
	if err != nil {
		return nil, fmt.Errorf("noise: %w", err)
	}
	up, err := upgrader.New([]sec.SecureTransport{nz}, muxers, nil, rm, nil)
	if err != nil {
		return nil, fmt.Errorf("upgrader: %w", err)
	}
	qcm, err := newQUICConnManager(key, rm)
	if err != nil {
		return nil, err
	}
	sw, err := swarm.NewSwarm(pid, ps, bus, append(opts, swarm.WithResourceManager(rm))...)
	if err != nil {
		_ = qcm.Close()
		return nil, fmt.Errorf("swarm: %w", err)
	}
	parts := &swarmParts{sw: sw, upgrader: up, quic: qcm}
	// Each transport is added as soon as it exists: the swarm closes the
	// transports it holds.
	qt, err := quic.NewTransport(key, qcm, nil, nil, rm)
	if err == nil {
		err = sw.AddTransport(qt)
	}
	if err != nil {
		_ = parts.close()
		return nil, fmt.Errorf("QUIC: %w", err)
	}
	tt, err := tcp.NewTCPTransport(up, rm, nil)
	if err == nil {
		err = sw.AddTransport(tt)
	}
	if err != nil {
		_ = parts.close()
		return nil, fmt.Errorf("TCP: %w", err)
	}
	return parts, nil
}

// newQUICConnManager makes the QUIC socket manager. An inbound QUIC
// connection is charged to the resource manager before its handshake (so
// the profile's limits hold against a handshake flood), and rm decides
// whether a source address must be verified first (a retry round trip).
func newQUICConnManager(key crypto.PrivKey, rm network.ResourceManager) (*quicreuse.ConnManager, error) {
	reset, token, err := quicKeys(key)
	if err != nil {
		return nil, err
	}
	cm, err := quicreuse.NewConnManager(reset, token,
		quicreuse.ConnContext(func(ctx context.Context, ci *quicgo.ClientInfo) (context.Context, error) {
			addr, err := quicreuse.ToQuicMultiaddr(ci.RemoteAddr, quicgo.Version1)
			if err != nil {
				addr = nil // rm still decides, without an address
			}
			scope, err := rm.OpenConnection(network.DirInbound, false, addr)
			if err != nil {
				return ctx, err
			}
			ctx = network.WithConnManagementScope(ctx, scope)
			context.AfterFunc(ctx, scope.Done)
			return ctx, nil
		}),
		quicreuse.VerifySourceAddress(func(addr net.Addr) bool { return rm.VerifySourceAddress(addr) }),
	)
	if err != nil {
		return nil, fmt.Errorf("QUIC: %w", err)
	}
	return cm, nil
}

// quicKeys derives QUIC's stateless-reset and address-token keys from the
// node's key, so that they survive a restart: after one, a peer still
// holding a connection is told at once that it is gone instead of timing
// out, and a token issued before is still accepted.
func quicKeys(key crypto.PrivKey) (quicgo.StatelessResetKey, quicgo.TokenGeneratorKey, error) {
	var reset quicgo.StatelessResetKey
	var token quicgo.TokenGeneratorKey
	raw, err := key.Raw()
	if err != nil {
		return reset, token, fmt.Errorf("QUIC keys: %w", err)
	}
	for _, k := range []struct {
		info string
		out  []byte
	}{
		{"edgenode quic stateless reset key", reset[:]},
		{"edgenode quic token generator key", token[:]},
	} {
		b, err := hkdf.Key(sha256.New, raw, nil, k.info, len(k.out))
		if err != nil {
			return reset, token, fmt.Errorf("QUIC keys: %w", err)
		}
		copy(k.out, b)
	}
	return reset, token, nil
}
