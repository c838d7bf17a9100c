package core

import (
	"context"
	"slices"
	"strconv"

	"github.com/edgenode/edgenode/kv"
)

// TxnScope is what a client's transaction ID is scoped to besides its
// device. The spec counts a request as a retransmission only when both its
// transaction ID and its HTTP path equal an earlier request's, so the scope
// is the endpoint and the path's other parameters: the same ID sent to
// another room, with another event type, or to /redact instead of /send is
// a new request.
type TxnScope struct {
	// Endpoint names the endpoint ("send", "redact").
	Endpoint string
	// Params are the path's parameters other than the transaction ID, in
	// path order.
	Params []string
}

// SendTxn is the scope of PUT /rooms/{roomId}/send/{eventType}/{txnId}.
func SendTxn(roomID, eventType string) TxnScope {
	return TxnScope{Endpoint: "send", Params: []string{roomID, eventType}}
}

// RedactTxn is the scope of PUT /rooms/{roomId}/redact/{eventId}/{txnId}.
func RedactTxn(roomID, eventID string) TxnScope {
	return TxnScope{Endpoint: "redact", Params: []string{roomID, eventID}}
}

// txnKey is where a transaction ID's event ID is kept: user ID, device ID,
// endpoint, the path's parameters, txn ID. Keys written before transaction
// IDs were scoped (user ID, device ID, txn ID) have fewer components, so no
// lookup ever finds them, which at worst lets a retry that spans the upgrade
// send its event twice; they go with their device (forgetDeviceTxns).
func txnKey(userID, deviceID string, scope TxnScope, txnID string) []byte {
	parts := make([]any, 0, 4+len(scope.Params))
	parts = append(parts, userID, deviceID, scope.Endpoint)
	for _, p := range scope.Params {
		parts = append(parts, p)
	}
	return kv.Key(TableTxn, append(parts, txnID)...)
}

// ToDeviceTxnEntry is how a to-device send's transaction ID is remembered
// among its device's recent ones (todevice.go): with the event type, which
// is part of the path of PUT /sendToDevice/{eventType}/{txnId}. The type's
// length comes first so no two (type, ID) pairs make the same entry.
// Entries remembered before (the bare ID) no longer match, which at worst
// delivers a retry that spans the upgrade twice; they age out of the list.
func ToDeviceTxnEntry(evType, txnID string) string {
	if txnID == "" {
		return ""
	}
	return strconv.Itoa(len(evType)) + ":" + evType + txnID
}

// TxnSweepBatch is how many transaction records one write deletes: a
// device that sent for years has more than one Badger transaction can hold.
const TxnSweepBatch = 1000

// ForgetDeviceTxns deletes every transaction ID record of a deleted device,
// scoped or from before scoping: a device's records are one per event it
// sent and nothing reads them once its access token is gone. It runs after
// the device's deletion has committed, in batches; a login that reuses the
// device ID in between can lose its first records, which at worst lets a
// retry of them send twice.
func (n *Node) ForgetDeviceTxns(ctx context.Context, userID, deviceID string) error {
	prefix := kv.Key(TableTxn, userID, deviceID)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		var keys [][]byte
		err := n.DB.View(func(tx *kv.Txn) error {
			return tx.Each(kv.Scan{Prefix: prefix, KeysOnly: true}, func(k, _ []byte) (bool, error) {
				keys = append(keys, slices.Clone(k))
				return len(keys) < TxnSweepBatch, nil
			})
		})
		if err != nil || len(keys) == 0 {
			return err
		}
		err = n.DB.Update(func(tx *kv.Txn) error {
			for _, k := range keys {
				if err := tx.Delete(k); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
}
