package clientapi

import (
	"github.com/edgenode/edgenode/internal/mxhttp"
	"github.com/edgenode/edgenode/node"
)

// Register adds the client API's routes to rt.
func Register(rt *mxhttp.Router, n *node.Node) {
	_ = n
}
