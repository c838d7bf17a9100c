package e2ee

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/edgenode/edgenode/internal/jsontext"
	"github.com/edgenode/edgenode/kv"
	"github.com/edgenode/edgenode/node/core"
	"github.com/matrix-org/gomatrixserverlib"
)

// Uploading a device's identity, one-time and fallback keys (keys/upload),
// and reading back the counts /sync reports.

// maxOneTimeKeys bounds one device's one-time keys of one algorithm. Clients
// keep about 50 on the server and forget their oldest private keys as they
// make new ones, so past the bound the oldest stored keys, the ones least
// likely to still work, are dropped.
const maxOneTimeKeys = 1000

// namedKey is one entry of a one_time_keys or fallback_keys map.
type namedKey struct {
	name, alg, id string
	raw           json.RawMessage // compacted
	canonical     []byte
}

// parseKeyMap checks the names ("algorithm:key_id") and values (a string or
// an object) of a one-time or fallback key map, sorted by name.
func parseKeyMap(keys map[string]json.RawMessage) ([]namedKey, error) {
	out := make([]namedKey, 0, len(keys))
	for name, raw := range keys {
		alg, id, ok := strings.Cut(name, ":")
		if !ok || alg == "" || id == "" {
			return nil, fmt.Errorf("%w: key name %q is not algorithm:key_id", core.ErrInvalidParam, name)
		}
		var s string
		if json.Unmarshal(raw, &s) != nil && !jsontext.IsObject(raw) {
			return nil, fmt.Errorf("%w: key %q is neither a string nor an object", core.ErrInvalidParam, name)
		}
		canonical, err := gomatrixserverlib.CanonicalJSON(raw)
		if err != nil {
			return nil, fmt.Errorf("%w: key %q: %v", core.ErrInvalidParam, name, err)
		}
		out = append(out, namedKey{name: name, alg: alg, id: id, raw: compactJSON(raw), canonical: canonical})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out, nil
}

// DeviceKeysJSON is the part of device_keys the server looks at (inbound
// federation checks remote devices' keys with it too).
type DeviceKeysJSON struct {
	UserID     string            `json:"user_id"`
	DeviceID   string            `json:"device_id"`
	Algorithms []string          `json:"algorithms"`
	Keys       map[string]string `json:"keys"`
}

// UploadKeys stores a device's identity keys (deviceKeys, which may be
// empty), one-time keys and fallback keys, and returns the device's
// one-time key counts. Device keys must name the uploading user and
// device; new or changed device keys are a device-list change. A one-time
// key ID uploaded again must come with the same key. A fallback key
// replaces the algorithm's previous one and starts unused, unless it is
// the same key again.
func (n *E2EE) UploadKeys(ctx context.Context, userID, deviceID string, deviceKeys json.RawMessage, oneTimeKeys, fallbackKeys map[string]json.RawMessage) (map[string]int, error) {
	// An empty object counts as absent: Synapse ignores one too, so a
	// client may send it when it has no identity keys to publish.
	hasDeviceKeys := !isAbsent(deviceKeys) && string(compactJSON(deviceKeys)) != "{}"
	var signed []byte
	if hasDeviceKeys {
		var dk DeviceKeysJSON
		if !jsontext.IsObject(deviceKeys) || json.Unmarshal(deviceKeys, &dk) != nil {
			return nil, fmt.Errorf("%w: device_keys is not a device keys object", core.ErrInvalidParam)
		}
		if dk.UserID != userID || dk.DeviceID != deviceID {
			return nil, fmt.Errorf("%w: device_keys are for %s/%s, not %s/%s", core.ErrInvalidParam, dk.UserID, dk.DeviceID, userID, deviceID)
		}
		if len(dk.Keys) == 0 {
			return nil, fmt.Errorf("%w: device_keys has no keys", core.ErrInvalidParam)
		}
		var err error
		if signed, err = signedPart(deviceKeys); err != nil {
			return nil, err
		}
	}
	otks, err := parseKeyMap(oneTimeKeys)
	if err != nil {
		return nil, err
	}
	fallbacks, err := parseKeyMap(fallbackKeys)
	if err != nil {
		return nil, err
	}
	for i := 1; i < len(fallbacks); i++ {
		if fallbacks[i].alg == fallbacks[i-1].alg {
			return nil, fmt.Errorf("%w: more than one fallback key for %s", core.ErrInvalidParam, fallbacks[i].alg)
		}
	}

	var counts map[string]int
	write := func(tx *kv.Txn) (changed bool, err error) {
		if ok, err := tx.Has(core.DeviceKey(userID, deviceID)); err != nil || !ok {
			if err == nil {
				err = fmt.Errorf("device %s: %w", deviceID, core.ErrNotFound)
			}
			return false, err
		}
		if hasDeviceKeys {
			if changed, err = storeDeviceKeys(tx, userID, deviceID, deviceKeys, signed); err != nil {
				return false, err
			}
		}
		meta, err := loadOTKMeta(tx, userID, deviceID)
		if err != nil {
			return false, err
		}
		if err := n.storeOneTimeKeys(tx, userID, deviceID, meta, otks); err != nil {
			return false, err
		}
		for _, k := range fallbacks {
			old, ok := meta.Fallback[k.alg]
			if ok && old.KeyID == k.name && sameCanonical(old.Key, k.canonical) {
				continue // the same key again keeps its used flag
			}
			meta.Fallback[k.alg] = fallbackKey{KeyID: k.name, Key: k.raw}
		}
		if len(otks) > 0 || len(fallbacks) > 0 {
			if err := tx.SetJSON(otkMetaKey(userID, deviceID), meta); err != nil {
				return false, err
			}
		}
		counts = meta.counts()
		return changed, nil
	}
	if hasDeviceKeys {
		err = n.ChangeDeviceLists(ctx, 1, func(tx *kv.Txn) ([]string, error) {
			changed, err := write(tx)
			if err != nil || !changed {
				return nil, err
			}
			return []string{userID}, nil
		})
	} else {
		err = RetryConflicts(ctx, func() error {
			return n.DB.Update(func(tx *kv.Txn) error {
				_, err := write(tx)
				return err
			})
		})
	}
	if errors.Is(err, kv.ErrTxnTooBig) {
		return nil, fmt.Errorf("%w: too many keys in one upload", core.ErrTooLarge)
	}
	return counts, err
}

// storeDeviceKeys stores device keys and reports whether they changed. Keys
// whose signed content is unchanged are kept as they are; changed keys drop
// the signatures others made on the old ones.
func storeDeviceKeys(tx *kv.Txn, userID, deviceID string, raw json.RawMessage, signed []byte) (bool, error) {
	old, err := tx.Get(DeviceKeysKey(userID, deviceID))
	if err != nil && !errors.Is(err, kv.ErrNotFound) {
		return false, err
	}
	if err == nil {
		oldSigned, err := signedPart(old)
		if err == nil && bytes.Equal(oldSigned, signed) {
			return false, nil
		}
	}
	if err := deletePrefix(tx, keySigPrefix(userID, deviceID)); err != nil {
		return false, err
	}
	return true, tx.Set(DeviceKeysKey(userID, deviceID), compactJSON(raw))
}

// storeOneTimeKeys adds new one-time keys under the next upload sequence
// number, refusing a known key ID with a different key, and drops the
// oldest past maxOneTimeKeys.
func (n *E2EE) storeOneTimeKeys(tx *kv.Txn, userID, deviceID string, meta *otkMeta, keys []namedKey) error {
	if len(keys) == 0 {
		return nil
	}
	meta.Seq++
	existing := map[string][]byte{} // algorithm:key ID -> canonical key, for algorithms uploaded
	for _, k := range keys {
		if _, seen := existing[k.alg]; seen {
			continue
		}
		existing[k.alg] = nil // marks the algorithm as read
		err := tx.Each(kv.Scan{Prefix: otkAlgPrefix(userID, deviceID, k.alg)}, func(key, v []byte) (bool, error) {
			id, err := kv.LastString(key)
			if err != nil {
				return false, err
			}
			c, err := gomatrixserverlib.CanonicalJSON(v)
			existing[k.alg+":"+id] = c
			return err == nil, err
		})
		if err != nil {
			return err
		}
	}
	added := map[string]bool{}
	for _, k := range keys {
		if old, ok := existing[k.name]; ok {
			if !bytes.Equal(old, k.canonical) {
				return fmt.Errorf("%w: one-time key %s already exists with different content", core.ErrInvalidParam, k.name)
			}
			continue
		}
		if err := tx.Set(otkKey(userID, deviceID, k.alg, meta.Seq, k.id), k.raw); err != nil {
			return err
		}
		meta.Counts[k.alg]++
		added[k.alg] = true
	}
	for alg := range added {
		over := meta.Counts[alg] - maxOneTimeKeys
		if over <= 0 {
			continue
		}
		dropped, err := tx.DeleteFirst(kv.Scan{Prefix: otkAlgPrefix(userID, deviceID, alg)}, over)
		if err != nil {
			return err
		}
		meta.Counts[alg] -= dropped
		n.Logger().Info("keys: dropped oldest one-time keys", "user", userID, "device", deviceID, "algorithm", alg, "dropped", dropped)
	}
	return nil
}

// OneTimeKeyCounts returns the number of unclaimed one-time keys of a
// device per algorithm (signed_curve25519 always present).
func (n *E2EE) OneTimeKeyCounts(ctx context.Context, userID, deviceID string) (map[string]int, error) {
	var counts map[string]int
	err := n.DB.View(func(tx *kv.Txn) error {
		meta, err := loadOTKMeta(tx, userID, deviceID)
		counts = meta.counts()
		return err
	})
	return counts, err
}

// UnusedFallbackKeyTypes returns the algorithms for which a device has a
// fallback key that has not been claimed, sorted.
func (n *E2EE) UnusedFallbackKeyTypes(ctx context.Context, userID, deviceID string) ([]string, error) {
	out := []string{}
	err := n.DB.View(func(tx *kv.Txn) error {
		meta, err := loadOTKMeta(tx, userID, deviceID)
		for alg, fb := range meta.Fallback {
			if !fb.Used {
				out = append(out, alg)
			}
		}
		return err
	})
	sort.Strings(out)
	return out, err
}
