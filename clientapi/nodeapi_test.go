package clientapi

import "github.com/edgenode/edgenode/node"

// *node.Node is what app passes to Register.
var _ Node = (*node.Node)(nil)
