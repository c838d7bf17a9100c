package core

import (
	"context"
	"slices"

	"github.com/edgenode/edgenode/kv"
)

// ForwardExtremities returns a room's forward extremities (the events no
// accepted event refers to yet), sorted. Two servers whose rooms have the
// same extremities and state have converged; simulations compare them.
func (n *Node) ForwardExtremities(ctx context.Context, roomID string) ([]string, error) {
	var out []string
	err := n.DB.View(func(tx *kv.Txn) error {
		room, err := LoadRoom(tx, roomID)
		if err != nil {
			return err
		}
		out = slices.Clone(room.Extremities)
		return nil
	})
	slices.Sort(out)
	return out, err
}
