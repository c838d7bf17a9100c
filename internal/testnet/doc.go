// Package testnet is the one home of the helpers that multi-node tests
// share: a node's test configuration and opening it on a real Badger
// directory (t.TempDir), registering users, creating a room and joining it
// from another node through the real client API, sending a message and
// waiting for it to arrive, calling the client API and reading /sync,
// signed device keys for the E2EE tests, PDUs signed as another server,
// libp2p QUIC on loopback, and routing federation requests to httptest
// listeners. Nothing here is a mock: the nodes are real, HTTP goes to
// 127.0.0.1 and federation runs over whatever the caller started (libp2p
// QUIC in the app and mobile tests, httptest listeners in federation's).
//
// It may import node, p2ptransport, internal/identity, gomatrixserverlib
// and the standard library; never app or federation. That split gives the
// most reuse: app imports federation, and the app and federation tests are
// internal tests (package app, package federation), so a helper package
// importing either would be an import cycle in their test builds. Starting
// an app.App therefore stays with the callers (startP2P and loopbackConfig
// in app's tests, internal/testnode for HTTP-level tests, mobile's
// NewNode); what a helper needs of a running node is a *node.Node and a
// base URL (Peer), which app's tests take from App's unexported node and
// other packages from testnode.App.Node (app.App.Inside). Package node's
// own tests cannot use it either (testnet imports node), nor can
// p2ptransport's.
//
// The simulation package builds its clusters in its own (non-test) code,
// which must not import a package built on the testing package; its tests
// run scenarios and set nothing up by hand, so they need nothing here.
package testnet
