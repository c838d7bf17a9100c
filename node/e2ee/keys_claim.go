package e2ee

import (
	"context"
	"encoding/json"
	"slices"

	"github.com/edgenode/edgenode/kv"
)

// Claiming one-time keys (keys/claim), falling back to a device's fallback
// key when its one-time keys run out.

// ClaimKeys claims one key per requested device (user ID -> device ID ->
// algorithm): the oldest one-time key of that algorithm, which is deleted
// so no one else gets it, or else the device's fallback key, which is
// marked used but kept. The result maps user ID -> device ID ->
// "algorithm:key_id" -> key; devices with no key are left out, and so are
// other servers' users (ClaimAllKeys claims theirs from their servers).
func (n *E2EE) ClaimKeys(ctx context.Context, claims map[string]map[string]string) (map[string]map[string]map[string]json.RawMessage, error) {
	var out map[string]map[string]map[string]json.RawMessage
	err := RetryConflicts(ctx, func() error {
		out = map[string]map[string]map[string]json.RawMessage{}
		return n.DB.Update(func(tx *kv.Txn) error {
			for userID, byDevice := range claims {
				if !n.IsLocalUser(userID) {
					n.Logger().Debug("keys: not claiming locally for a remote user", "user", userID)
					continue
				}
				for deviceID, alg := range byDevice {
					keyID, key, err := claimOne(tx, userID, deviceID, alg)
					if err != nil {
						return err
					}
					if key == nil {
						continue
					}
					if out[userID] == nil {
						out[userID] = map[string]map[string]json.RawMessage{}
					}
					out[userID][deviceID] = map[string]json.RawMessage{keyID: key}
				}
			}
			return nil
		})
	})
	return out, err
}

// claimOne takes a device's oldest one-time key of alg, or its fallback
// key; a nil key means it has neither.
func claimOne(tx *kv.Txn, userID, deviceID, alg string) (string, json.RawMessage, error) {
	if alg == "" {
		return "", nil, nil
	}
	var otkKeyBytes []byte
	var keyID string
	var key json.RawMessage
	err := tx.Each(kv.Scan{Prefix: otkAlgPrefix(userID, deviceID, alg)}, func(k, v []byte) (bool, error) {
		id, err := kv.LastString(k)
		if err != nil {
			return false, err
		}
		otkKeyBytes, keyID, key = slices.Clone(k), alg+":"+id, slices.Clone(v)
		return false, nil
	})
	if err != nil {
		return "", nil, err
	}
	meta, err := loadOTKMeta(tx, userID, deviceID)
	if err != nil {
		return "", nil, err
	}
	if key != nil {
		if err := tx.Delete(otkKeyBytes); err != nil {
			return "", nil, err
		}
		if meta.Counts[alg]--; meta.Counts[alg] <= 0 {
			delete(meta.Counts, alg)
		}
	} else {
		fb, ok := meta.Fallback[alg]
		if !ok {
			return "", nil, nil
		}
		keyID, key = fb.KeyID, fb.Key
		fb.Used = true
		meta.Fallback[alg] = fb
	}
	return keyID, key, tx.SetJSON(otkMetaKey(userID, deviceID), meta)
}
