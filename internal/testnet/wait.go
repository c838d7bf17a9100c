package testnet

import (
	"context"
	"errors"
	"testing"

	"github.com/edgenode/edgenode/node"
	"github.com/edgenode/edgenode/node/core"
)

// WaitForEvent waits (bounded by ctx) until userID on n sees eventID among
// the newest 50 events of the room's timeline. It is woken by n's listener
// for userID, so it polls nothing.
func WaitForEvent(ctx context.Context, tb testing.TB, n *node.Node, userID, roomID, eventID string) {
	tb.Helper()
	l := n.Listen(userID)
	defer l.Close()
	for {
		page, err := n.RoomEvents(ctx, userID, roomID, core.Range{Backwards: true, Limit: 50})
		if err != nil && !errors.Is(err, core.ErrNotFound) {
			tb.Fatalf("room events: %v", err)
		}
		for _, ev := range page.Events {
			if ev.PDU.EventID() == eventID {
				return
			}
		}
		if !l.Wait(ctx) {
			tb.Fatalf("event %s did not arrive at %s: %v", eventID, n.ServerName(), ctx.Err())
		}
	}
}
