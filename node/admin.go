package node

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/edgenode/edgenode/kv"
	"github.com/edgenode/edgenode/node/core"
)

// IsAdmin reports whether userID is a local account created as an
// administrator (RegisterRequest.Admin: the operator's account command).
// Admin endpoints check it.
func (n *Node) IsAdmin(ctx context.Context, userID string) (bool, error) {
	if !n.IsLocalUser(userID) {
		return false, nil
	}
	var rec accountRecord
	localpart, _, _ := strings.Cut(strings.TrimPrefix(userID, "@"), ":")
	err := n.DB.View(func(tx *kv.Txn) error {
		return tx.GetJSON(core.AccountKey(localpart), &rec)
	})
	if errors.Is(err, kv.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("account %s: %w", userID, err)
	}
	return rec.Admin, nil
}
