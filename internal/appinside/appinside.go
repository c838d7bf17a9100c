// Package appinside holds the key with which this module's own tests and
// simulations reach the node inside an app.App. An App keeps its node,
// libp2p host and federation client to itself, so an embedder gets only
// App's methods (a surface as small as tsnet.Server's); but an HTTP-level
// test or a simulation's convergence check reads room state no embedder
// needs. Being internal, this package cannot be imported from outside the
// module, so App.Inside cannot be handed a valid key there. It imports
// nothing of edgenode.
package appinside

// Key unlocks app.App.Inside. Its zero value does not: only Grant makes
// one that does.
type Key struct{ granted bool }

// Grant returns a key that unlocks app.App.Inside.
func Grant() Key { return Key{granted: true} }

// Granted reports whether k came from Grant.
func (k Key) Granted() bool { return k.granted }
