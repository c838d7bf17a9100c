// Package simulation runs many real edgenode nodes (node, Badger in
// temporary directories, client API, federation over libp2p) in one
// process, drives them through a scenario (rooms, message and sticky-event
// traffic, partitions, churn, late joiners) and measures what users would
// see: whether every event reached every joined node, how long delivery
// took, and whether the nodes agree on each room's state and forward
// extremities at the end.
//
// Two networks are available: go-libp2p's mocknet (in-memory links with
// per-link latency and bandwidth, partitions by unlinking) for large runs,
// and real QUIC on 127.0.0.1 for smaller ones. The command cmd/edgesim and
// the package's tests share Run.
package simulation
