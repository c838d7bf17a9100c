// Package testnode starts real nodes for tests: a real Badger directory in
// t.TempDir() and the real client API on 127.0.0.1, and gives a small client
// for calling it. Every package's HTTP-level tests use it.
package testnode

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/edgenode/edgenode/app"
	"github.com/edgenode/edgenode/internal/appinside"
	"github.com/edgenode/edgenode/internal/testnet"
	"github.com/edgenode/edgenode/node"
)

// Node is a running test node.
type Node struct {
	t   testing.TB
	App *App
	Dir string
	URL string
}

// App is the running app and, for tests that read or change state beside
// the HTTP API, the node inside it (app.App keeps it to itself).
type App struct {
	*app.App
	Node *node.Node
}

// Options adjust a test node.
type Options struct {
	// Dir reuses a data directory (to test restarts); empty makes a new one.
	Dir string
	// ClosedRegistration turns open registration off.
	ClosedRegistration bool
	// Configure, if set, adjusts the app's configuration before it starts
	// (login limits, web origins, a libp2p host).
	Configure func(*app.Config)
}

// Start starts a node and stops it when the test ends.
func Start(t testing.TB, opts Options) *Node {
	t.Helper()
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	cfg := app.Config{
		ClientListen: "127.0.0.1:0",
		Node:         testnet.NodeConfig(opts.Dir),
	}
	cfg.Node.OpenRegistration = !opts.ClosedRegistration
	if opts.Configure != nil {
		opts.Configure(&cfg)
	}
	a, err := app.Start(context.Background(), cfg)
	if err != nil {
		t.Fatalf("start node: %v", err)
	}
	n := &Node{t: t, App: &App{App: a, Node: a.Inside(appinside.Grant())}, Dir: opts.Dir, URL: a.BaseURL()}
	t.Cleanup(func() { n.Stop() })
	return n
}

// Stop stops the node (safe to call twice).
func (n *Node) Stop() {
	if n.App == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := n.App.Close(ctx); err != nil {
		n.t.Errorf("stop node: %v", err)
	}
	n.App = nil
}

// Response is an HTTP response with its body decoded as JSON (when it is).
type Response struct {
	Status int
	Body   map[string]any
	Raw    []byte
}

// Errcode is the body's errcode, if any.
func (r Response) Errcode() string { s, _ := r.Body["errcode"].(string); return s }

// String returns the body's field k as a string.
func (r Response) String(k string) string { s, _ := r.Body[k].(string); return s }

// Do calls the client API. body may be nil, a []byte (sent as is) or any
// value (sent as JSON). token may be empty.
func (n *Node) Do(method, path, token string, body any) Response {
	n.t.Helper()
	status, raw := testnet.Raw(context.Background(), n.t, method, n.URL+path, token, body)
	out := Response{Status: status, Raw: raw}
	_ = json.Unmarshal(raw, &out.Body)
	return out
}

// User is a registered user on a test node.
type User struct {
	UserID, DeviceID, Token string
}

// Register registers a user through the API with the dummy auth flow.
func (n *Node) Register(localpart string) User {
	n.t.Helper()
	res := n.Do("POST", "/_matrix/client/v3/register", "", map[string]any{
		"username": localpart, "password": "pw-" + localpart, "auth": map[string]any{"type": "m.login.dummy"},
	})
	if res.Status != http.StatusOK {
		n.t.Fatalf("register %s: %d %s", localpart, res.Status, res.Raw)
	}
	return User{UserID: res.String("user_id"), DeviceID: res.String("device_id"), Token: res.String("access_token")}
}
