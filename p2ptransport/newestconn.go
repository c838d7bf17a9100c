package p2ptransport

import (
	"context"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/net/gostream"
	msmux "github.com/multiformats/go-multistream"
)

// negotiationTimeout bounds how long closing a stream waits for a protocol
// handshake the remote never answered (as go-libp2p's host does).
const negotiationTimeout = 10 * time.Second

// dialStream opens an HTTP stream to pid. With one connection to the peer
// (or none: then it dials) it is gostream.Dial. With several, it opens the
// stream on the newest direct one (newest limited one if there is no
// direct one and ctx allows limited connections). libp2p's own choice
// prefers the connection with the most open streams, which after a peer's
// restart is its dead old connection, kept until QUIC's idle timeout: every
// request would hang that long.
func (n *Host) dialStream(ctx context.Context, pid peer.ID) (net.Conn, error) {
	c := newestConn(n.h.Network().ConnsToPeer(pid), allowsLimited(ctx))
	if c == nil {
		return gostream.Dial(ctx, n.h, pid, ProtocolID)
	}
	s, err := c.NewStream(ctx)
	if err != nil {
		return nil, fmt.Errorf("open stream: %w", err)
	}
	if err := s.SetProtocol(ProtocolID); err != nil {
		s.Reset()
		return nil, fmt.Errorf("set protocol: %w", err)
	}
	// The peer's server is known to speak ProtocolID, so negotiate lazily
	// (with the request's first bytes), as go-libp2p's host does for
	// protocols a peer is known to support.
	return &streamConn{Stream: s, rw: msmux.NewMSSelect(s, ProtocolID)}, nil
}

func allowsLimited(ctx context.Context) bool {
	ok, _ := network.GetAllowLimitedConn(ctx)
	return ok
}

// newestConn is the connection dialStream uses when there are two or more
// open ones; nil otherwise.
func newestConn(conns []network.Conn, limitedOK bool) network.Conn {
	var best network.Conn
	open := 0
	for _, c := range conns {
		if c.IsClosed() {
			continue
		}
		open++
		if c.Stat().Limited && !limitedOK {
			continue
		}
		if best == nil || betterConn(c, best) {
			best = c
		}
	}
	if open < 2 {
		return nil
	}
	return best
}

// betterConn prefers direct connections, then newer ones.
func betterConn(a, b network.Conn) bool {
	if al, bl := a.Stat().Limited, b.Stat().Limited; al != bl {
		return !al
	}
	return a.Stat().Opened.After(b.Stat().Opened)
}

// streamConn is a libp2p stream as a net.Conn, reading and writing through
// the lazy protocol negotiation.
type streamConn struct {
	network.Stream
	rw io.ReadWriteCloser
}

func (s *streamConn) Read(b []byte) (int, error)  { return s.rw.Read(b) }
func (s *streamConn) Write(b []byte) (int, error) { return s.rw.Write(b) }

func (s *streamConn) Close() error {
	// Do not let Close wait forever for a handshake the remote never
	// answers.
	_ = s.Stream.SetReadDeadline(time.Now().Add(negotiationTimeout))
	return s.rw.Close()
}

func (s *streamConn) LocalAddr() net.Addr  { return peerAddr(s.Conn().LocalPeer()) }
func (s *streamConn) RemoteAddr() net.Addr { return peerAddr(s.Conn().RemotePeer()) }

// peerAddr is a peer ID as a net.Addr, as gostream's conns report theirs.
type peerAddr peer.ID

func (a peerAddr) Network() string { return gostream.Network }
func (a peerAddr) String() string  { return peer.ID(a).String() }
