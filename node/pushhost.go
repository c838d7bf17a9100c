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

// withDefaultPushRules adds the default m.push_rules to a user's account
// data read from the start when they never changed a rule: the spec has an
// initial /sync carry the push rules.
func withDefaultPushRules(changes []AccountDataChange, userID string) []AccountDataChange {
	for _, c := range changes {
		if c.RoomID == "" && c.Type == AccountDataPushRules {
			return changes
		}
	}
	return append(changes, AccountDataChange{Type: AccountDataPushRules, Content: push.DefaultPushRulesContent(userID)})
}
