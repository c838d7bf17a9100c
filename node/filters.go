package node

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/edgenode/edgenode/kv"
	"github.com/edgenode/edgenode/node/core"
)

// SaveFilter stores a user's filter definition and returns its ID.
func (n *Node) SaveFilter(ctx context.Context, userID string, filter json.RawMessage) (string, error) {
	var id string
	err := n.DB.Update(func(tx *kv.Txn) error {
		key := core.CounterKey("filter:" + userID)
		var next uint64
		b, err := tx.Get(key)
		switch {
		case err == nil && len(b) == 8:
			next = binary.BigEndian.Uint64(b)
		case err != nil && !errors.Is(err, kv.ErrNotFound):
			return err
		}
		if err := tx.Set(key, binary.BigEndian.AppendUint64(nil, next+1)); err != nil {
			return err
		}
		id = strconv.FormatUint(next, 10)
		return tx.Set(core.FilterKey(userID, id), filter)
	})
	return id, err
}

// Filter returns a stored filter definition, or ErrNotFound.
func (n *Node) Filter(ctx context.Context, userID, filterID string) (json.RawMessage, error) {
	var f []byte
	err := n.DB.View(func(tx *kv.Txn) error {
		var err error
		f, err = tx.Get(core.FilterKey(userID, filterID))
		return err
	})
	if errors.Is(err, kv.ErrNotFound) {
		return nil, fmt.Errorf("filter %s: %w", filterID, core.ErrNotFound)
	}
	return f, err
}
