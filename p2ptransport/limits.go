package p2ptransport

import (
	"fmt"
	"time"

	"github.com/edgenode/edgenode/internal/devprofile"

	"github.com/libp2p/go-libp2p/core/connmgr"
	"github.com/libp2p/go-libp2p/core/network"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	basicconnmgr "github.com/libp2p/go-libp2p/p2p/net/connmgr"
)

// profileLimits are the explicit resource limits of a device profile.
type profileLimits struct {
	memory     int64 // bytes the libp2p stack may reserve in total
	fds        int
	conns      int // total connections (inbound is half)
	streams    int // total streams (inbound is half)
	lowWater   int // connection manager low watermark
	highWater  int // connection manager high watermark
	transConns int // transient (not yet upgraded) connections

	dhtBucketSize   int           // Kademlia k: routing table entries per bucket
	dhtConcurrency  int           // Kademlia alpha: parallel requests per lookup
	dhtRefresh      time.Duration // routing table refresh period (radio wake-ups on phones)
	dhtMode         string        // DHT mode when Config.DHTMode is empty
	relayRsvps      int           // relay service: reservations held at once
	relayCircuits   int           // relay service: open circuits per peer
	relayDuration   time.Duration // relay service: lifetime of one relayed connection
	relayDataPerDir int64         // relay service: bytes per direction of one relayed connection
}

// Profiles. The resource manager's automatic scaling does not go below
// 128 MiB, so every profile sets its limits explicitly.
//
// DHT: phones are clients by default (answering queries costs battery and
// their addresses change), a Pi or server answers. Buckets are smaller than
// the public DHT's 20 on phones: edgenode networks are small and each entry
// is a peer kept in memory and refreshed.
//
// Relay service: a circuit costs two small buffers, but a relayed federation
// transaction can be large, so circuits last longer and carry more than
// libp2p's 2 min / 128 KiB default while the number of reservations stays
// what a Pi on a home uplink can carry.
var profiles = map[string]profileLimits{
	"phone": {memory: 32 << 20, fds: 64, conns: 32, streams: 256, lowWater: 8, highWater: 16, transConns: 16,
		dhtBucketSize: 10, dhtConcurrency: 3, dhtRefresh: time.Hour, dhtMode: "client",
		relayRsvps: 8, relayCircuits: 4, relayDuration: 5 * time.Minute, relayDataPerDir: 1 << 20},
	"pi": {memory: 64 << 20, fds: 128, conns: 64, streams: 512, lowWater: 16, highWater: 32, transConns: 32,
		dhtBucketSize: 20, dhtConcurrency: 3, dhtRefresh: 30 * time.Minute, dhtMode: "server",
		relayRsvps: 32, relayCircuits: 8, relayDuration: 10 * time.Minute, relayDataPerDir: 4 << 20},
	"server": {memory: 256 << 20, fds: 1024, conns: 256, streams: 2048, lowWater: 64, highWater: 128, transConns: 64,
		dhtBucketSize: 20, dhtConcurrency: 5, dhtRefresh: 15 * time.Minute, dhtMode: "server",
		relayRsvps: 128, relayCircuits: 16, relayDuration: 10 * time.Minute, relayDataPerDir: 16 << 20},
}

// DefaultProfile is used when Config.Profile is empty: the same profile as
// storage's (kv.DefaultProfile), which devprofile decides for both.
const DefaultProfile = devprofile.Default

func lookupProfile(name string) (profileLimits, error) {
	p, ok := profiles[devprofile.Resolve(name)]
	if !ok {
		return profileLimits{}, fmt.Errorf("p2ptransport: unknown profile %q (want phone, pi or server)", name)
	}
	return p, nil
}

// concrete is the profile's full resource-manager limit configuration:
// libp2p's defaults at the profile's memory and FD budget, with the system
// and transient scopes capped explicitly.
func (p profileLimits) concrete() rcmgr.ConcreteLimitConfig {
	scaling := rcmgr.DefaultLimits
	addServiceLimits(&scaling)
	return p.concreteFrom(scaling.Scale(p.memory, p.fds))
}

// concreteFrom is base with the system and transient scopes capped by the
// profile.
func (p profileLimits) concreteFrom(base rcmgr.ConcreteLimitConfig) rcmgr.ConcreteLimitConfig {
	lv := func(n int) rcmgr.LimitVal { return rcmgr.LimitVal(n) }
	partial := rcmgr.PartialLimitConfig{
		System: rcmgr.ResourceLimits{
			Memory:          rcmgr.LimitVal64(p.memory),
			FD:              lv(p.fds),
			Conns:           lv(p.conns),
			ConnsInbound:    lv(p.conns / 2),
			ConnsOutbound:   lv(p.conns),
			Streams:         lv(p.streams),
			StreamsInbound:  lv(p.streams / 2),
			StreamsOutbound: lv(p.streams),
		},
		Transient: rcmgr.ResourceLimits{
			Memory:          rcmgr.LimitVal64(p.memory / 4),
			FD:              lv(p.fds / 4),
			Conns:           lv(p.transConns),
			ConnsInbound:    lv(p.transConns / 2),
			ConnsOutbound:   lv(p.transConns),
			Streams:         lv(p.streams / 4),
			StreamsInbound:  lv(p.streams / 8),
			StreamsOutbound: lv(p.streams / 4),
		},
	}
	return partial.Build(base)
}

// managers builds the resource manager and connection manager of a profile.
func (p profileLimits) managers() (network.ResourceManager, connmgr.ConnManager, error) {
	rm, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(p.concrete()))
	if err != nil {
		return nil, nil, fmt.Errorf("p2ptransport: resource manager: %w", err)
	}
	cm, err := basicconnmgr.NewConnManager(p.lowWater, p.highWater)
	if err != nil {
		_ = rm.Close()
		return nil, nil, fmt.Errorf("p2ptransport: connection manager: %w", err)
	}
	return rm, cm, nil
}
