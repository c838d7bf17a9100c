package mobile

import (
	"context"
	"errors"
	"fmt"

	"github.com/edgenode/edgenode/app"
)

// Connect connects to another node given by a multiaddr ending in
// /p2p/<peer ID> (from its PeerAddrs, a QR code, a link). The address is
// remembered until Stop, and the peer is kept connected through Suspend.
// It waits up to 30 seconds for the connection.
func (n *Node) Connect(multiaddr string) (err error) {
	defer recovered(&err)
	a, err := n.running()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), connectTimeout)
	defer cancel()
	switch err := a.Connect(ctx, multiaddr); {
	case errors.Is(err, app.ErrNoFederation):
		return fmt.Errorf("mobile: connect: federation is off (no_p2p)")
	case err != nil:
		return fmt.Errorf("mobile: connect: %w", err)
	}
	return nil
}

// peerJSON is one entry of Peers.
type peerJSON struct {
	ServerName string   `json:"server_name"`
	Addrs      []string `json:"addrs"`
}

// Peers lists the connected nodes as a JSON array of objects
// {"server_name": "...", "addrs": ["<remote multiaddr>", ...]}, sorted by
// server name; "[]" without federation.
func (n *Node) Peers() (s string, err error) {
	defer recovered(&err)
	a, err := n.running()
	if err != nil {
		return "", err
	}
	out := []peerJSON{}
	for _, p := range a.Peers() { // sorted by server name
		out = append(out, peerJSON{ServerName: p.ServerName, Addrs: append([]string{}, p.Addrs...)})
	}
	return marshal(out)
}

// PeerAddrs lists this node's own libp2p addresses, each ending in
// /p2p/<peer ID>, as a JSON array of strings: what another node passes to
// Connect. "[]" without federation.
func (n *Node) PeerAddrs() (s string, err error) {
	defer recovered(&err)
	a, err := n.running()
	if err != nil {
		return "", err
	}
	return marshal(append([]string{}, a.PeerAddrs()...))
}

// Suspend is for when the app goes to the background: the node stops
// discovery (mDNS, DHT refreshes) and closes connections to all peers but
// those added with Connect or configured. The client API keeps serving and
// federation still dials peers on demand. Call Resume when the app returns.
// It does nothing without federation or when already suspended.
func (n *Node) Suspend() (err error) {
	defer recovered(&err)
	a, err := n.running()
	if err != nil {
		return err
	}
	a.Suspend()
	return nil
}

// Resume is for when the app returns to the foreground: discovery starts
// again and configured peers are redialled.
func (n *Node) Resume() (err error) {
	defer recovered(&err)
	a, err := n.running()
	if err != nil {
		return err
	}
	a.Resume()
	return nil
}
