package mobile

import (
	"context"
	"fmt"
)

// RebindClient closes the client API's listener and listens again on the
// same address (BaseURL does not change), without touching the database or
// libp2p: cheap enough to call each time an iOS app returns to the
// foreground, as the OS may have closed its sockets while it was
// suspended. If the port cannot be bound again, the error says why and the
// node reports itself unhealthy; Stop and Start then pick a new port.
func (n *Node) RebindClient() (err error) {
	defer recovered(&err)
	a, err := n.running()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), connectTimeout)
	defer cancel()
	if err := a.RebindClient(ctx); err != nil {
		return fmt.Errorf("mobile: rebind client API: %w", err)
	}
	return nil
}
