package mxhttp

import (
	"context"

	"github.com/edgenode/edgenode/node"
	"github.com/edgenode/edgenode/node/core"
)

// Node is what the HTTP edge needs of the node: to turn an access token
// into a device for Authed routes, and the node's configuration for the web
// origins whose pages may use Public routes that change something
// (origin.go). *node.Node implements it; the router holds only this, so
// the edge cannot reach room state or any other part of the node.
type Node interface {
	Authenticate(ctx context.Context, token string) (node.Device, error)
	Config() core.Config
}
