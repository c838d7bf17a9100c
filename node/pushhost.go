package node

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/edgenode/edgenode/kv"
	"github.com/edgenode/edgenode/node/push"
)

// pushHost gives the push concern (node/push) its users' push rules, which
// are account data (m.push_rules), kept here.
type pushHost struct{ n *Node }

var _ push.Host = pushHost{}

// UpdatePushRules changes the m.push_rules account data in the account-data
// stream's transaction (push.Host).
func (h pushHost) UpdatePushRules(ctx context.Context, userID string, fn func(tx *kv.Txn, old json.RawMessage) (json.RawMessage, error)) error {
	return h.n.updateAccountDataTx(ctx, userID, "", AccountDataPushRules, fn)
}

// PushRulesContent reads the m.push_rules account data in tx (push.Host).
func (pushHost) PushRulesContent(tx *kv.Txn, userID string) (json.RawMessage, error) {
	var rec accountDataRecord
	err := tx.GetJSON(accountDataKey(userID, "", AccountDataPushRules), &rec)
	if errors.Is(err, kv.ErrNotFound) {
		return nil, nil
	}
	return rec.Content, err
}

// DefaultPushRulesContent is the m.push_rules account data of a user who
// never changed a push rule: the spec's defaults for userID. The sync API
// sends it in an initial sync when the user has no m.push_rules stored.
func DefaultPushRulesContent(userID string) json.RawMessage {
	return push.DefaultPushRulesContent(userID)
}
