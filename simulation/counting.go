package simulation

import (
	"bytes"
	"sync/atomic"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// Traffic is one node's federation traffic: HTTP requests and bytes (stream
// payload: HTTP headers and bodies, without libp2p framing).
type Traffic struct {
	RequestsSent     int64 `json:"requests_sent"`
	RequestsReceived int64 `json:"requests_received"`
	BytesSent        int64 `json:"bytes_sent"`
	BytesReceived    int64 `json:"bytes_received"`
}

// counters accumulate a node's Traffic; they survive its restarts.
type counters struct {
	reqOut, reqIn, bytesOut, bytesIn atomic.Int64
}

func (c *counters) snapshot() Traffic {
	return Traffic{RequestsSent: c.reqOut.Load(), RequestsReceived: c.reqIn.Load(),
		BytesSent: c.bytesOut.Load(), BytesReceived: c.bytesIn.Load()}
}

// countingHost counts federation traffic where it is served: every
// federation request arrives on an inbound stream, so what the handler
// reads was sent by the remote peer and what it writes was sent by this
// node. Counting on the serving side only sees every byte once, whichever
// way the client opened its stream (p2ptransport may open streams on a
// chosen connection, bypassing Host.NewStream).
type countingHost struct {
	host.Host
	c      *counters
	remote func(peer.ID) *counters // the counters of another node, or nil
}

// SetStreamHandler wraps inbound streams with counting.
func (h *countingHost) SetStreamHandler(pid protocol.ID, handler network.StreamHandler) {
	h.Host.SetStreamHandler(pid, func(s network.Stream) {
		handler(&countingStream{Stream: s, local: h.c, remote: h.remote(s.Conn().RemotePeer())})
	})
}

// requestLine ends every HTTP/1.1 request line. JSON bodies cannot hold a
// raw CR LF, so counting it counts requests.
var requestLine = []byte(" HTTP/1.1\r\n")

// countingStream counts an inbound stream's bytes and requests.
type countingStream struct {
	network.Stream
	local, remote *counters
	tail          []byte // the last bytes read, for a request line split across reads
}

// Read counts what the remote peer sent.
func (s *countingStream) Read(b []byte) (int, error) {
	n, err := s.Stream.Read(b)
	if n > 0 {
		s.local.bytesIn.Add(int64(n))
		buf := append(s.tail, b[:n]...)
		reqs := int64(bytes.Count(buf, requestLine))
		s.local.reqIn.Add(reqs)
		if s.remote != nil {
			s.remote.bytesOut.Add(int64(n))
			s.remote.reqOut.Add(reqs)
		}
		// Keep fewer bytes than a request line, so none is counted twice.
		keep := min(len(buf), len(requestLine)-1)
		s.tail = append(s.tail[:0], buf[len(buf)-keep:]...)
	}
	return n, err
}

// Write counts what this node answers.
func (s *countingStream) Write(b []byte) (int, error) {
	n, err := s.Stream.Write(b)
	s.local.bytesOut.Add(int64(n))
	if s.remote != nil {
		s.remote.bytesIn.Add(int64(n))
	}
	return n, err
}
