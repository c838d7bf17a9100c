package userdir

import (
	"context"
	"errors"
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
	// searching bounds the searches in flight (maxSearches): each is
	// bounded, and so is their number, so a client firing searches in
	// parallel is told to wait rather than taking every core.
	searching chan struct{}
}

// maxSearches is how many searches run at once, node-wide.
const maxSearches = 4

// ErrBusy is returned when maxSearches searches are running; the HTTP edge
// answers it with 429 M_LIMIT_EXCEEDED.
var ErrBusy = errors.New("userdir: too many searches at once")

// New returns the directory of the room core c. Its Indexer must be
// registered with c before rooms are committed; Build then covers the
// rooms the node had before the directory existed.
func New(c *core.Node) *Directory {
	return &Directory{c: c, db: c.DB, log: c.Logger().With("component", "userdir"), searching: make(chan struct{}, maxSearches)}
}

// Build indexes, once, the rooms committed before the node had a user
// directory (a node upgraded in place), and finishes any room a crash left
// half indexed (catchup.go). It runs before the node serves anyone. (A
// function rather than a method, so that node.Node, which embeds the
// Directory, does not get an Open or Build method.)
func Build(ctx context.Context, d *Directory) error {
	if err := d.rebuildOnce(ctx); err != nil {
		return fmt.Errorf("userdir: %w", err)
	}
	return nil
}
