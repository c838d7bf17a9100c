package node

import "github.com/edgenode/edgenode/kv"

// KV returns the node's database, for stores that keep their index in it
// beside the node's tables (the media store, package media). They must
// use table names of their own and be closed before the node.
func (n *Node) KV() *kv.DB { return n.DB }
