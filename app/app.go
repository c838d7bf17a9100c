// Package app assembles a runnable homeserver: the node, its client API
// (clientapi and syncapi) served over loopback HTTP, and, when configured,
// its libp2p host serving the federation API to other nodes. The command and
// the mobile facade both start nodes through it; node cannot, as the APIs
// import node.
package app

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/edgenode/edgenode/clientapi"
	"github.com/edgenode/edgenode/federation"
	"github.com/edgenode/edgenode/internal/devprofile"
	"github.com/edgenode/edgenode/internal/mxhttp"
	"github.com/edgenode/edgenode/media"
	"github.com/edgenode/edgenode/node"
	"github.com/edgenode/edgenode/node/core"
	"github.com/edgenode/edgenode/p2ptransport"
	"github.com/edgenode/edgenode/syncapi"
	"github.com/libp2p/go-libp2p/core/host"
)

// DefaultClientListen is where the client API listens unless configured:
// loopback only, so nothing off the device can reach it.
const DefaultClientListen = "127.0.0.1:8008"

// Config configures an App.
type Config struct {
	Node core.Config
	// ClientListen is the client API's HOST:PORT (port 0 picks a free one).
	ClientListen string
	// StableClientPort keeps a port picked for ClientListen's port 0 in the
	// data directory and listens on it again at later starts (a new one is
	// picked, and kept, if it is taken); see clientport.go.
	StableClientPort bool
	// OnHealth, if set, hears of the app's health: the client API or
	// federation listener failing (and the client API coming back with
	// RebindClient), and the app stopping itself after a storage fault. It
	// is called from the app's goroutines, one call at a time, never with
	// a lock of the app or the node held; it must not block.
	OnHealth func(HealthEvent)
	// P2P configures the libp2p host other nodes reach this one through;
	// nil runs the node without federation.
	P2P *P2PConfig
	// Media configures the content repository (media.go).
	Media MediaConfig
}

// P2PConfig configures the libp2p host and the federation served over it.
type P2PConfig struct {
	// Config holds the libp2p options (p2ptransport.Config is their one
	// definition). The app sets PrivateKey (the node's key), Profile
	// (Node.StorageProfile's, so that one profile sizes storage and
	// libp2p alike), Logger (the node's, unless one is given) and Host
	// (from NewHost); Start refuses a PrivateKey, a Host, or a Profile
	// other than the storage's set here.
	p2ptransport.Config
	// Limits bound each peer's federation requests (zero: the defaults,
	// sized for a phone or a Pi).
	Limits federation.Limits
	// NewHost, if set, makes the libp2p host from the node's key instead
	// of p2ptransport (simulations make mocknet hosts); see
	// p2ptransport.Config.Host. Close closes the host.
	NewHost func(ed25519.PrivateKey) (host.Host, error)
}

// check refuses the fields of the host's configuration that are the
// app's to set (see P2PConfig.Config). profile is the storage's.
func (c *P2PConfig) check(profile string) error {
	switch {
	case c.PrivateKey != nil:
		return errors.New("app: P2PConfig.PrivateKey is the node's key; leave it unset")
	case c.Host != nil:
		return errors.New("app: P2PConfig.Host: set NewHost instead (the host needs the node's key)")
	case c.Profile != "" && c.Profile != profile:
		return fmt.Errorf("app: P2PConfig.Profile %q differs from Node.StorageProfile %q: one profile sizes both", c.Profile, profile)
	}
	return nil
}

// App is a running homeserver.
type App struct {
	node *node.Node
	// p2p is the libp2p host (nil without federation).
	p2p *p2ptransport.Host
	// federation sends signed requests to other nodes over p2p (nil without).
	federation *federation.Client

	sender    *federation.Sender
	peersDone chan struct{}

	client  *clientServer // the client API (client.go)
	servers []*server     // federation
	log     *slog.Logger
	health  *health // health.go

	closeOnce sync.Once
	closeErr  error

	// media is the content repository (media.go); mediaRemote fetches
	// other servers' media for it.
	media       *media.Store
	mediaRemote remoteFetcher
	mediaFreeze bool
	// mediaFetch fetches other servers' media over federation, and
	// prefetch does so in the background (mediaprefetch.go); nil
	// without federation.
	mediaFetch *federation.MediaFetcher
	prefetch   *prefetcher
}

// server is one HTTP server and the result of its Serve.
type server struct {
	srv  *http.Server
	ln   net.Listener
	done chan error
}

// serve serves srv on ln in a goroutine. onFail, if set, hears of Serve
// ending other than by Shutdown or Close: the listener failed.
func serve(srv *http.Server, ln net.Listener, onFail func(error)) *server {
	s := &server{srv: srv, ln: ln, done: make(chan error, 1)}
	go func() {
		err := srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		if err != nil && onFail != nil {
			onFail(err)
		}
		s.done <- err
	}()
	return s
}

// Handler returns the client API handler for n (all client routes).
func Handler(n *node.Node) http.Handler {
	rt := mxhttp.NewRouter(n, n.Logger())
	clientapi.Register(rt, n)
	syncapi.Register(rt, n)
	return rt
}

// Start opens the node and starts serving the client API and, if
// configured, federation over libp2p.
func Start(ctx context.Context, cfg Config) (*App, error) {
	if cfg.ClientListen == "" {
		cfg.ClientListen = DefaultClientListen
	}
	// One place (devprofile) decides what an unset profile means, and the
	// node and the libp2p host get the same name from here.
	cfg.Node.StorageProfile = devprofile.Resolve(cfg.Node.StorageProfile)
	if cfg.P2P != nil {
		if err := cfg.P2P.check(cfg.Node.StorageProfile); err != nil {
			return nil, err
		}
	}
	n, err := node.New(ctx, cfg.Node)
	if err != nil {
		return nil, err
	}
	a := &App{node: n, log: n.Logger(), health: newHealth(cfg.OnHealth)}
	if err := a.start(ctx, cfg); err != nil {
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return nil, errors.Join(err, a.Close(cctx))
	}
	a.watchStorage()
	a.log.Info("edgenode started", "server_name", n.ServerName(), "client_api", a.BaseURL())
	return a, nil
}

func (a *App) start(ctx context.Context, cfg Config) error {
	if err := a.openMedia(ctx, cfg); err != nil {
		return err
	}
	if err := a.startClient(cfg); err != nil {
		return err
	}
	if cfg.P2P == nil {
		return nil
	}
	var given host.Host
	var err error
	if cfg.P2P.NewHost != nil {
		if given, err = cfg.P2P.NewHost(a.node.SigningKey()); err != nil {
			return fmt.Errorf("libp2p host: %w", err)
		}
	}
	hc := cfg.P2P.Config // a copy: the caller's config is not written to
	hc.PrivateKey, hc.Profile, hc.Host = a.node.SigningKey(), cfg.Node.StorageProfile, given
	if hc.Logger == nil {
		hc.Logger = a.log
	}
	host, err := p2ptransport.New(ctx, hc)
	if err != nil {
		return err
	}
	a.p2p = host
	a.federation = federation.NewClient(a.node, host.RoundTripper())
	// Joins of rooms the node does not have, invites of other servers' users
	// and declining invites from them, inbound PDUs' unknown prev events,
	// and aliases, profiles and keys of other servers' users all go through
	// the federation client.
	a.node.SetRemote(a.federation)
	// Other servers' media: fetched on a download, and prefetched as
	// their events arrive (mediaprefetch.go).
	a.mediaFetch = federation.NewMediaFetcher(a.federation, a.media, federation.MediaFetcherOptions{Restricted: a.mediaFreeze})
	a.SetMediaFetcher(a.mediaFetch)
	a.startPrefetch(cfg)
	a.sender = federation.NewSender(a.node, a.federation, federation.SenderOptions{})
	if err := a.sender.Start(context.WithoutCancel(ctx)); err != nil {
		return err
	}
	// A peer coming back gets its queue at once, not after its backoff
	// (the fault Dendrite's P2P demos had).
	a.peersDone = make(chan struct{})
	go func() {
		defer close(a.peersDone)
		for ev := range host.Events() {
			if ev.Up {
				a.sender.PeerUp(ev.ServerName)
			}
		}
	}()
	// The federation handler learns who is calling from the authenticated
	// libp2p connection, never from anything the caller sends.
	a.servers = append(a.servers, serve(&http.Server{
		Handler:           federation.NewHandlerWithOptions(a.node, p2ptransport.PeerServerName, federation.HandlerOptions{Limits: cfg.P2P.Limits, Media: a.media}),
		ConnContext:       p2ptransport.ConnContext,
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       5 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}, host.Listener(), func(err error) { a.health.problem(componentFederation, "federation listener failed: "+err.Error()) }))
	return nil
}

// Close stops accepting requests, ends long-polls with their (empty)
// answers, lets in-flight requests finish (until ctx is done), closes the
// libp2p host, then closes the node. Calling it again returns the first
// call's result.
func (a *App) Close(ctx context.Context) error {
	a.closeOnce.Do(func() {
		a.closeErr = a.close(ctx)
		a.health.closed()
	})
	return a.closeErr
}

func (a *App) close(ctx context.Context) error {
	a.node.BeginShutdown() // long-polls answer now rather than at their timeout
	// Fetches of other servers' media end now: downloads waiting on them
	// answer rather than hold the shutdown up.
	if a.prefetch != nil {
		a.prefetch.stop()
	}
	if a.mediaFetch != nil {
		a.mediaFetch.Close()
	}
	var errs []error
	if a.client != nil {
		errs = append(errs, a.client.shutdown(ctx))
	}
	for _, s := range a.servers {
		errs = append(errs, s.srv.Shutdown(ctx), <-s.done)
	}
	if a.sender != nil {
		a.sender.Stop()
	}
	if a.p2p != nil {
		errs = append(errs, a.p2p.Close())
		if a.peersDone != nil {
			<-a.peersDone // Close closes the event channel
		}
	}
	if a.media != nil {
		errs = append(errs, a.media.Close()) // its index is in the node's database
	}
	errs = append(errs, a.node.Close())
	return errors.Join(errs...)
}
