package p2ptransport

import (
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/host/autonat"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	circuit "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/proto"
	relayv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
	"github.com/libp2p/go-libp2p/p2p/protocol/holepunch"
	"github.com/libp2p/go-libp2p/p2p/protocol/identify"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"
)

// serviceLimit is the resource-manager limit of one libp2p service the
// host runs, and of its protocols: in all (scaled with the profile's
// memory) and per peer (fixed).
type serviceLimit struct {
	service                    string
	protocols                  []protocol.ID
	all, peer                  rcmgr.BaseLimit // the service's
	protoAll, protoPeer        rcmgr.BaseLimit // each of its protocols'
	allIncrease, protoIncrease rcmgr.BaseLimitIncrease
}

// serviceLimits are the limits of the services libp2p bundles (identify,
// ping, AutoNAT, hole punching, circuit relay), with the values of
// go-libp2p's libp2p.SetDefaultServiceLimits, which the host used while it
// was built by go-libp2p's root package. That package cannot be imported
// here (it links WebRTC, WebTransport and WebSocket; see swarm.go), so the
// values are restated; TestServiceLimitsAsLibp2p keeps them equal.
func serviceLimits() []serviceLimit {
	bl := func(in, out, streams int, mem int64) rcmgr.BaseLimit {
		return rcmgr.BaseLimit{StreamsInbound: in, StreamsOutbound: out, Streams: streams, Memory: mem}
	}
	inc := func(in, out, streams int, mem int64) rcmgr.BaseLimitIncrease {
		return rcmgr.BaseLimitIncrease{StreamsInbound: in, StreamsOutbound: out, Streams: streams, Memory: mem}
	}
	// A stream's worst-case memory per peer: 32 windows of 256 KiB + 16 KiB.
	const peerStreamMem = 32 * (256<<20 + 16<<10)
	same := func(s serviceLimit) serviceLimit {
		s.protoAll, s.protoPeer, s.protoIncrease = s.all, s.peer, s.allIncrease
		return s
	}
	return []serviceLimit{
		{
			service: identify.ServiceName, protocols: []protocol.ID{identify.ID, identify.IDPush},
			all: bl(64, 64, 128, 4<<20), allIncrease: inc(64, 64, 128, 4<<20), peer: bl(16, 16, 32, 1<<20),
			protoAll: bl(64, 64, 128, 4<<20), protoIncrease: inc(64, 64, 128, 4<<20), protoPeer: bl(16, 16, 32, peerStreamMem),
		},
		same(serviceLimit{
			service: ping.ServiceName, protocols: []protocol.ID{ping.ID},
			all: bl(64, 64, 64, 4<<20), allIncrease: inc(64, 64, 64, 4<<20), peer: bl(2, 3, 4, peerStreamMem),
		}),
		same(serviceLimit{
			service: autonat.ServiceName, protocols: []protocol.ID{autonat.AutoNATProto},
			all: bl(64, 64, 64, 4<<20), allIncrease: inc(4, 4, 4, 2<<20), peer: bl(2, 2, 2, 1<<20),
		}),
		same(serviceLimit{
			service: holepunch.ServiceName, protocols: []protocol.ID{holepunch.Protocol},
			all: bl(32, 32, 64, 4<<20), allIncrease: inc(8, 8, 16, 4<<20), peer: bl(2, 2, 2, 1<<20),
		}),
		{
			service: relayv2.ServiceName, protocols: []protocol.ID{circuit.ProtoIDv2Hop, circuit.ProtoIDv2Stop},
			all: bl(256, 256, 256, 16<<20), allIncrease: inc(256, 256, 256, 16<<20), peer: bl(64, 64, 64, 1<<20),
			// The circuit protocols serve both the relay client and service.
			protoAll: bl(640, 640, 640, 16<<20), protoIncrease: inc(640, 640, 640, 16<<20), protoPeer: bl(128, 128, 128, 32<<20),
		},
	}
}

// addServiceLimits adds serviceLimits to a scaling configuration.
func addServiceLimits(c *rcmgr.ScalingLimitConfig) {
	for _, s := range serviceLimits() {
		c.AddServiceLimit(s.service, s.all, s.allIncrease)
		c.AddServicePeerLimit(s.service, s.peer, rcmgr.BaseLimitIncrease{})
		for _, p := range s.protocols {
			c.AddProtocolLimit(p, s.protoAll, s.protoIncrease)
			c.AddProtocolPeerLimit(p, s.protoPeer, rcmgr.BaseLimitIncrease{})
		}
	}
}
