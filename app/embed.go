package app

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/edgenode/edgenode/internal/appinside"
	"github.com/edgenode/edgenode/node"
	"github.com/edgenode/edgenode/node/push"
	"github.com/edgenode/edgenode/p2ptransport"
)

// What an embedder (the command, the mobile facade, an app of its own) asks
// of a running App, beside BaseURL, RebindClient, SetInterfaceAddrs and
// NetworkChanged (network.go) and the health methods (health.go: Done, Err,
// Running, Healthy and Config.OnHealth, which say when the node died). The
// node, the libp2p host and the federation client stay inside: an embedder
// talks Matrix to BaseURL and needs nothing more of them.

// ErrNoFederation is returned by Connect when the app runs without
// federation (Config.P2P was nil).
var ErrNoFederation = errors.New("app: federation is off")

// ServerName is the node's Matrix server name (derived from its key unless
// configured, so it is the same across restarts).
func (a *App) ServerName() string { return a.node.ServerName() }

// PeerAddrs lists this node's own libp2p addresses, each ending in
// /p2p/<peer ID>: what another node passes to Connect. Nil without
// federation.
func (a *App) PeerAddrs() []string {
	if a.p2p == nil {
		return nil
	}
	return a.p2p.Addrs()
}

// Peers lists the connected nodes, sorted by server name. Nil without
// federation.
func (a *App) Peers() []p2ptransport.PeerInfo {
	if a.p2p == nil {
		return nil
	}
	peers := a.p2p.Peers()
	sort.Slice(peers, func(i, j int) bool { return peers[i].ServerName < peers[j].ServerName })
	return peers
}

// Connect connects to another node given by a multiaddr ending in
// /p2p/<peer ID> and waits for the connection (until ctx is done). The
// peer is kept connected through Suspend and redialled after
// NetworkChanged. ErrNoFederation without federation.
func (a *App) Connect(ctx context.Context, multiaddr string) error {
	if a.p2p == nil {
		return ErrNoFederation
	}
	return a.p2p.Connect(ctx, multiaddr)
}

// Suspend is for when the embedding app goes to the background: peer
// discovery stops and connections to all peers but static and Connect-ed
// ones close (see p2ptransport.Host.Suspend). The client API keeps serving
// and federation still dials on demand. It does nothing without
// federation or when already suspended.
func (a *App) Suspend() {
	if a.p2p != nil {
		a.p2p.Suspend()
	}
}

// Resume undoes Suspend: discovery starts again and static peers are
// redialled. It does nothing without federation or when not suspended.
func (a *App) Resume() {
	if a.p2p != nil {
		a.p2p.Resume()
	}
}

// CreateAccount creates a local admin account and logs its first device
// in, whether or not open registration is on: the embedder owns the node.
// password may be empty (the account then cannot log in with a password
// later); deviceDisplayName may be empty.
func (a *App) CreateAccount(ctx context.Context, localpart, password, deviceDisplayName string) (node.Session, error) {
	s, err := a.node.Register(ctx, node.RegisterRequest{
		Localpart:         localpart,
		Password:          password,
		DeviceDisplayName: deviceDisplayName,
		Admin:             true,
	})
	if err != nil {
		return node.Session{}, fmt.Errorf("create account %q: %w", localpart, err)
	}
	return s, nil
}

// Login logs a new device of an existing account in. user is a localpart
// or a full user ID; deviceID may be empty (a new one is picked) or an
// existing device's ID (its old token is replaced).
func (a *App) Login(ctx context.Context, user, password, deviceID, deviceDisplayName string) (node.Session, error) {
	s, err := a.node.Login(ctx, user, password, deviceID, deviceDisplayName)
	if err != nil {
		return node.Session{}, fmt.Errorf("login %q: %w", user, err)
	}
	return s, nil
}

// SetNewEventHandler sets fn to hear of each event that reaches one of the
// node's users (nil removes it); see node.Node.SetNewEventHandler for when
// it is called and what it must not do.
func (a *App) SetNewEventHandler(fn func(push.NewEvent)) { a.node.SetNewEventHandler(fn) }

// NewEventsDropped counts the events not given to the new-event handler
// because it was behind, since Start.
func (a *App) NewEventsDropped() int64 { return a.node.NewEventsDropped() }

// TrimCaches drops the node's caches (the trim of StartMemoryGuard).
func (a *App) TrimCaches() { a.node.TrimCaches() }

// Inside returns the node the app runs, for this module's own tests and
// simulations, which read room state no embedder needs: k must come from
// internal/appinside.Grant, which code outside the module cannot import.
// Any other key gets nil. Embedders use App's other methods.
func (a *App) Inside(k appinside.Key) *node.Node {
	if !k.Granted() {
		return nil
	}
	return a.node
}
