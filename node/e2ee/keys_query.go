package e2ee

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/edgenode/edgenode/kv"
	"github.com/edgenode/edgenode/node/core"
)

// Querying device and cross-signing keys (keys/query), with the signatures
// uploaded later merged in for the requester to see.

// QueryKeys returns the device keys of the requested devices (user ID ->
// device IDs, an empty list meaning all of the user's devices), with each
// device's display name in unsigned.device_display_name, and the users'
// master and self-signing keys; the user-signing key only of requester.
// Signatures made later are merged in: those by the key's owner, and those
// by requester (others' signatures on a user's key are theirs to see).
// Local users with no keys get an empty device map; other servers' users
// are left out (QueryAllKeys asks their servers).
func (n *E2EE) QueryKeys(ctx context.Context, requester string, users map[string][]string) (
	deviceKeys map[string]map[string]json.RawMessage, masterKeys, selfSigningKeys, userSigningKeys map[string]json.RawMessage, err error,
) {
	deviceKeys = map[string]map[string]json.RawMessage{}
	masterKeys, selfSigningKeys, userSigningKeys = map[string]json.RawMessage{}, map[string]json.RawMessage{}, map[string]json.RawMessage{}
	err = n.DB.View(func(tx *kv.Txn) error {
		for userID, deviceIDs := range users {
			if !n.IsLocalUser(userID) {
				n.Logger().Debug("keys: not querying locally for a remote user", "user", userID)
				continue
			}
			signers := uniqueStrings([]string{userID, requester})
			byDevice, err := n.queryDeviceKeys(tx, userID, deviceIDs, signers)
			if err != nil {
				return err
			}
			deviceKeys[userID] = byDevice
			usages := []string{UsageMaster, UsageSelfSigning}
			if userID == requester {
				usages = append(usages, UsageUserSigning)
			}
			for _, usage := range usages {
				raw, err := readCrossSigningKey(tx, userID, usage, signers)
				if err != nil {
					return err
				}
				if raw == nil {
					continue
				}
				switch usage {
				case UsageMaster:
					masterKeys[userID] = raw
				case UsageSelfSigning:
					selfSigningKeys[userID] = raw
				default:
					userSigningKeys[userID] = raw
				}
			}
		}
		return nil
	})
	return deviceKeys, masterKeys, selfSigningKeys, userSigningKeys, err
}

// queryDeviceKeys reads the device keys of some (or, with none named, all)
// of a user's devices, decorated for a query.
func (n *E2EE) queryDeviceKeys(tx *kv.Txn, userID string, deviceIDs, signers []string) (map[string]json.RawMessage, error) {
	stored := map[string][]byte{}
	if len(deviceIDs) == 0 {
		err := tx.Each(kv.Scan{Prefix: deviceKeysPrefix(userID)}, func(k, v []byte) (bool, error) {
			id, err := kv.LastString(k)
			stored[id] = v
			return err == nil, err
		})
		if err != nil {
			return nil, err
		}
	}
	for _, id := range deviceIDs {
		v, err := tx.Get(DeviceKeysKey(userID, id))
		if errors.Is(err, kv.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		stored[id] = v
	}
	out := map[string]json.RawMessage{}
	for id, raw := range stored {
		displayName, err := n.host.DeviceDisplayName(tx, userID, id)
		if errors.Is(err, core.ErrNotFound) {
			continue // deleted devices lose their keys with them; be safe anyway
		}
		if err != nil {
			return nil, err
		}
		sigs, err := extraSignatures(tx, userID, id, signers)
		if err != nil {
			return nil, err
		}
		unsigned := map[string]string{}
		if displayName != "" {
			unsigned["device_display_name"] = displayName
		}
		decorated, err := decorateKey(raw, sigs, unsigned)
		if err != nil {
			return nil, err
		}
		out[id] = decorated
	}
	return out, nil
}

// readCrossSigningKey reads one cross-signing key with the visible extra
// signatures merged in; nil when the user has none.
func readCrossSigningKey(tx *kv.Txn, userID, usage string, signers []string) (json.RawMessage, error) {
	raw, err := tx.Get(crossSigningKey(userID, usage))
	if errors.Is(err, kv.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	csk, err := parseStoredCrossSigningKey(raw)
	if err != nil {
		return nil, err
	}
	sigs, err := extraSignatures(tx, userID, csk.pub, signers)
	if err != nil {
		return nil, err
	}
	return decorateKey(raw, sigs, nil)
}

// extraSignatures collects the signatures stored apart from a key, by the
// given signers.
func extraSignatures(tx *kv.Txn, userID, keyID string, signers []string) (map[string]map[string]string, error) {
	out := map[string]map[string]string{}
	for _, s := range signers {
		var sigs map[string]string
		err := tx.GetJSON(keySigKey(userID, keyID, s), &sigs)
		if errors.Is(err, kv.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out[s] = sigs
	}
	return out, nil
}

// decorateKey merges signatures into a key's JSON and, when unsigned is not
// nil, sets its unsigned object.
func decorateKey(raw []byte, sigs map[string]map[string]string, unsigned map[string]string) (json.RawMessage, error) {
	if len(sigs) == 0 && unsigned == nil {
		return json.RawMessage(raw), nil
	}
	var obj map[string]json.RawMessage
	if err := core.DecodeJSON(raw, &obj); err != nil {
		return nil, err
	}
	if len(sigs) > 0 {
		all := map[string]map[string]string{}
		if s, ok := obj["signatures"]; ok {
			_ = json.Unmarshal(s, &all) // a malformed stored map is replaced
			if all == nil {
				all = map[string]map[string]string{}
			}
		}
		for signer, bySigner := range sigs {
			if all[signer] == nil {
				all[signer] = map[string]string{}
			}
			for k, v := range bySigner {
				all[signer][k] = v
			}
		}
		obj["signatures"], _ = json.Marshal(all)
	}
	if unsigned != nil {
		obj["unsigned"], _ = json.Marshal(unsigned)
	}
	return json.Marshal(obj)
}
