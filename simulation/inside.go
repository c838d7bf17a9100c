package simulation

import (
	"github.com/edgenode/edgenode/app"
	"github.com/edgenode/edgenode/internal/appinside"
	"github.com/edgenode/edgenode/node"
)

// inside is the node a running app runs: the convergence checks read room
// state (events, extremities, current state, the outbound queue) that the
// App does not offer embedders.
func inside(a *app.App) *node.Node { return a.Inside(appinside.Grant()) }
