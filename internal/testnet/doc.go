// Package testnet is the one home of the helpers that multi-node tests
// share: opening a node on a real Badger directory, registering users,
// creating a room and joining it from another node through the real client
// API, waiting for an event to arrive, calling the client API and reading
// /sync, and picking a node's QUIC addresses. Nothing here is a mock: the
// nodes are real, their data directories are real (t.TempDir), HTTP goes to
// 127.0.0.1 and federation runs over whatever the caller started (libp2p
// QUIC on loopback in the app tests, httptest listeners in federation's).
//
// It imports node and the standard library only, never app or federation.
// That is the split that gives the most reuse: app imports federation, and
// the app and federation tests are internal tests (package app, package
// federation), so a helper package importing app would be an import cycle
// in both test builds. Starting an app.App (startP2P in app's tests,
// internal/testnode for HTTP-level tests) therefore stays with the callers;
// what a helper needs of a running node is a *node.Node and a base URL
// (Peer), which every caller can hand over: app's tests from App's unexported
// node, other packages through testnode.App.Node (app.App.Inside).
package testnet
