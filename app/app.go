// Package app assembles a runnable homeserver: the node plus its client API
// (clientapi and syncapi) served over HTTP. The command and the mobile
// facade both start nodes through it; node cannot, as the APIs import node.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/edgenode/edgenode/clientapi"
	"github.com/edgenode/edgenode/internal/mxhttp"
	"github.com/edgenode/edgenode/node"
	"github.com/edgenode/edgenode/syncapi"
)

// DefaultClientListen is where the client API listens unless configured:
// loopback only, so nothing off the device can reach it.
const DefaultClientListen = "127.0.0.1:8008"

// Config configures an App.
type Config struct {
	Node node.Config
	// ClientListen is the client API's HOST:PORT (port 0 picks a free one).
	ClientListen string
}

// App is a running homeserver.
type App struct {
	Node    *node.Node
	ln      net.Listener
	srv     *http.Server
	done    chan error
	log     *slog.Logger
	baseURL string
}

// Handler returns the client API handler for n (all client routes).
func Handler(n *node.Node) http.Handler {
	rt := mxhttp.NewRouter(n, n.Logger())
	clientapi.Register(rt, n)
	syncapi.Register(rt, n)
	return rt
}

// Start opens the node and starts serving the client API.
func Start(ctx context.Context, cfg Config) (*App, error) {
	if cfg.ClientListen == "" {
		cfg.ClientListen = DefaultClientListen
	}
	n, err := node.New(ctx, cfg.Node)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.ClientListen)
	if err != nil {
		n.Close()
		return nil, fmt.Errorf("client API listen %s: %w", cfg.ClientListen, err)
	}
	a := &App{
		Node: n, ln: ln, done: make(chan error, 1), log: n.Logger(),
		baseURL: "http://" + ln.Addr().String(),
		srv: &http.Server{
			Handler:           Handler(n),
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       2 * time.Minute,
			MaxHeaderBytes:    64 << 10,
		},
	}
	go func() {
		err := a.srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		a.done <- err
	}()
	a.log.Info("edgenode started", "server_name", n.ServerName(), "client_api", a.baseURL)
	return a, nil
}

// BaseURL is the client API's base URL, e.g. http://127.0.0.1:8008.
func (a *App) BaseURL() string { return a.baseURL }

// Close stops accepting requests, ends long-polls with their (empty)
// answers, lets in-flight requests finish (until ctx is done), then closes
// the node.
func (a *App) Close(ctx context.Context) error {
	a.Node.BeginShutdown() // long-polls answer now rather than at their timeout
	err := a.srv.Shutdown(ctx)
	if serveErr := <-a.done; err == nil {
		err = serveErr
	}
	if cerr := a.Node.Close(); err == nil {
		err = cerr
	}
	return err
}
