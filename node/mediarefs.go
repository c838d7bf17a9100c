package node

import "github.com/edgenode/edgenode/node/mediaref"

// MediaRefs is the queue of media other servers' events reference
// (node/mediaref), disabled until the app's prefetch enables it.
func (n *Node) MediaRefs() *mediaref.Queue { return n.mediaRefs }
