package federation

import "github.com/edgenode/edgenode/node"

// *node.Node is what app passes to NewHandler, NewSender and NewClient.
var (
	_ HandlerNode = (*node.Node)(nil)
	_ SenderNode  = (*node.Node)(nil)
	_ ClientNode  = (*node.Node)(nil)
)
