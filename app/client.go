package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"
)

// clientServer is the client API's HTTP server. It can be rebound (closed
// and listened again on the same address) without touching the rest of the
// app: iOS reclaims a suspended app's sockets, and reopening Badger and
// libp2p for that would cost seconds.
type clientServer struct {
	handler http.Handler
	health  *health

	mu      sync.Mutex // guards the fields below
	addr    string     // HOST:PORT listened on
	cur     *server    // nil once shut down
	closing bool
}

func (c *clientServer) newHTTPServer() *http.Server {
	return &http.Server{
		Handler:           c.handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
}

// serveOn serves on ln. Called with mu held.
func (c *clientServer) serveOn(ln net.Listener) {
	c.addr = ln.Addr().String()
	c.cur = serve(c.newHTTPServer(), ln, func(err error) {
		c.health.problem(componentClient, "client API listener failed: "+err.Error())
	})
}

// startClient listens for the client API (see clientport.go for
// StableClientPort) and serves it.
func (a *App) startClient(cfg Config) error {
	ln, err := listenClient(cfg, a.log)
	if err != nil {
		return err
	}
	a.client = &clientServer{handler: a.clientHandler(), health: a.health}
	a.client.mu.Lock()
	a.client.serveOn(ln)
	a.client.mu.Unlock()
	return nil
}

// BaseURL is the client API's base URL, e.g. http://127.0.0.1:8008.
func (a *App) BaseURL() string {
	a.client.mu.Lock()
	defer a.client.mu.Unlock()
	return "http://" + a.client.addr
}

// RebindClient closes the client API's listener and its connections
// (requests under way end) and listens again on the same address, so
// BaseURL does not change. Nothing else is touched: the database, libp2p
// and federation keep running. It is what an iOS app calls when it returns
// to the foreground, as the OS may have closed its sockets while it was
// suspended. If the address cannot be bound again the client API stays
// down (the app is unhealthy) and the error says why; RebindClient may be
// tried again.
func (a *App) RebindClient(ctx context.Context) error {
	err := a.client.rebind(ctx)
	// OnHealth is told with no lock held: it may call back into the App.
	if err != nil {
		a.health.problem(componentClient, "client API down: "+err.Error())
		return err
	}
	a.health.fixed(componentClient)
	return nil
}

func (c *clientServer) rebind(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return errors.New("app: closed")
	}
	if c.cur != nil {
		// Close, not Shutdown: after a suspension the connections are
		// dead, and a long-poll in flight would hold Shutdown for its
		// whole timeout.
		_ = c.cur.srv.Close()
		<-c.cur.done
		c.cur = nil
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", c.addr)
	if err != nil {
		return fmt.Errorf("client API listen %s: %w", c.addr, err)
	}
	c.serveOn(ln)
	return nil
}

// shutdown stops the client API for good, letting requests finish until
// ctx is done.
func (c *clientServer) shutdown(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closing = true
	if c.cur == nil {
		return nil
	}
	err := errors.Join(c.cur.srv.Shutdown(ctx), <-c.cur.done)
	c.cur = nil
	return err
}
