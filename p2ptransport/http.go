package p2ptransport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/net/gostream"
)

// PeerServerName returns the server name of the authenticated libp2p peer
// that sent r, for requests served on (*Host).Listener.
//
// How it works: every net.Conn accepted from Listener is a gostream conn
// wrapping one libp2p stream; its RemoteAddr().String() is the remote peer
// ID (string form) of the Noise/TLS-authenticated libp2p connection that
// carries the stream, and net/http copies that string verbatim into
// r.RemoteAddr. PeerServerName decodes r.RemoteAddr as a peer ID and
// converts it with ServerNameFromPeer. A request on an ordinary TCP listener
// has an "ip:port" RemoteAddr, which does not decode, so ok is false.
//
// Do not put middleware that rewrites r.RemoteAddr (X-Forwarded-For / real-IP
// helpers) in front of federation handlers: it would make the peer identity
// spoofable. For a check that middleware cannot alter, set the server's
// ConnContext to ConnContext: PeerServerName then prefers the identity stored
// in the request context at accept time.
func PeerServerName(r *http.Request) (string, bool) {
	if v, ok := r.Context().Value(peerCtxKey{}).(peer.ID); ok {
		name, err := ServerNameFromPeer(v)
		return name, err == nil
	}
	id, err := peer.Decode(r.RemoteAddr)
	if err != nil {
		return "", false
	}
	name, err := ServerNameFromPeer(id)
	if err != nil {
		return "", false
	}
	return name, true
}

type peerCtxKey struct{}

// ConnContext is suitable as http.Server.ConnContext for a server on
// (*Host).Listener: it records the authenticated remote peer of each
// connection in the request context, where PeerServerName finds it.
// Connections that are not libp2p streams get nothing.
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	ra := c.RemoteAddr()
	if ra == nil || ra.Network() != gostream.Network {
		return ctx
	}
	id, err := peer.Decode(ra.String())
	if err != nil {
		return ctx
	}
	return context.WithValue(ctx, peerCtxKey{}, id)
}

// roundTripper rewrites any scheme to http and sends over t, whose dialer
// opens gostreams.
type roundTripper struct {
	t *http.Transport
	// maxBody caps each response body (MaxResponseBytes).
	maxBody int64
}

func newRoundTripper(n *Host) *roundTripper {
	t := &http.Transport{
		DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
			hostName := addr
			if h, _, err := net.SplitHostPort(addr); err == nil {
				hostName = h
			}
			pid, err := PeerFromServerName(strings.ToLower(hostName))
			if err != nil {
				return nil, fmt.Errorf("p2ptransport: dial %q: %w", hostName, err)
			}
			if pid == n.h.ID() {
				return nil, fmt.Errorf("p2ptransport: dial %q: refusing to dial self", hostName)
			}
			c, err := n.dialFederation(ctx, pid)
			if err != nil {
				return nil, fmt.Errorf("p2ptransport: dial %s: %w", hostName, err)
			}
			return c, nil
		},
		MaxIdleConns:          64,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: 0, // callers bound requests with their context
		ForceAttemptHTTP2:     false,
	}
	return &roundTripper{t: t, maxBody: MaxResponseBytes}
}

func (rt *roundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL == nil {
		return nil, fmt.Errorf("p2ptransport: request has no URL")
	}
	if req.URL.Scheme != "http" {
		r2 := req.Clone(req.Context())
		r2.URL.Scheme = "http"
		req = r2
	}
	res, err := rt.t.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	res.Body = &cappedBody{ReadCloser: res.Body, left: rt.maxBody}
	return res, nil
}

// MaxResponseBytes caps the body of a response from another node: the
// federation client reads answers whole, and a hostile peer could otherwise
// stream without end. The largest honest answers (send_join's state and
// auth chain, /state of a big room, a backfill of 100 events) are a few MiB.
const MaxResponseBytes = 32 << 20

// errResponseTooLarge ends the read of a body over the cap.
var errResponseTooLarge = errors.New("p2ptransport: response body over the size limit")

// cappedBody fails reads past its limit.
type cappedBody struct {
	io.ReadCloser
	left int64
}

func (b *cappedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		var one [1]byte // at the limit: fine if the body ends here
		if n, err := b.ReadCloser.Read(one[:]); n == 0 && err == io.EOF {
			return 0, io.EOF
		}
		return 0, errResponseTooLarge
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.ReadCloser.Read(p)
	b.left -= int64(n)
	return n, err
}
