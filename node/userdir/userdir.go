package userdir

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/edgenode/edgenode/kv"
	"github.com/edgenode/edgenode/node/core"
)

// Directory is the user directory of a node. node.Node embeds it, so its
// exported methods are the node's.
type Directory struct {
	c   *core.Node
	db  *kv.DB
	log *slog.Logger
}

// New returns the directory of the room core c. Its Indexer must be
// registered with c before rooms are committed; Open then covers the rooms
// the node had before the directory existed.
func New(c *core.Node) *Directory {
	return &Directory{c: c, db: c.DB, log: c.Logger().With("component", "userdir")}
}

// Open indexes, once, the rooms committed before the node had a user
// directory (a node upgraded in place). It runs before the node serves
// anyone.
func (d *Directory) Open(ctx context.Context) error {
	if err := d.rebuildOnce(ctx); err != nil {
		return fmt.Errorf("userdir: %w", err)
	}
	return nil
}
