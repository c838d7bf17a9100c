package node

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/edgenode/edgenode/kv"
	"github.com/matrix-org/gomatrixserverlib"
)

// End-to-end encryption keys: each device's identity keys (device_keys),
// its one-time keys and one fallback key per algorithm, each user's
// cross-signing keys, and signatures made on those keys afterwards. The
// server only stores and hands these out; it checks signatures where the
// spec says a key must be signed by another, and never sees a private key.

// Cross-signing key usages, as in a key's "usage" list and the API's names.
const (
	UsageMaster      = "master"
	UsageSelfSigning = "self_signing"
	UsageUserSigning = "user_signing"
)

// algSignedCurve25519 is the one-time key algorithm Olm uses. Its count is
// always reported, as zero when there are none: some clients only upload
// one-time keys after seeing a count for it.
const algSignedCurve25519 = "signed_curve25519"

// maxOneTimeKeys bounds one device's one-time keys of one algorithm. Clients
// keep about 50 on the server and forget their oldest private keys as they
// make new ones, so past the bound the oldest stored keys, the ones least
// likely to still work, are dropped.
const maxOneTimeKeys = 1000

// otkMeta is a device's one-time key bookkeeping: one small record that
// /sync reads for the counts and the unused fallback key types.
type otkMeta struct {
	// Seq numbers uploads, so one-time keys are claimed in upload order.
	Seq uint64 `json:"seq,omitempty"`
	// Counts is the number of unclaimed one-time keys, per algorithm.
	Counts map[string]int `json:"counts,omitempty"`
	// Fallback is the current fallback key, per algorithm.
	Fallback map[string]fallbackKey `json:"fallback,omitempty"`
}

type fallbackKey struct {
	KeyID string          `json:"id"` // algorithm:key ID
	Key   json.RawMessage `json:"key"`
	Used  bool            `json:"used,omitempty"`
}

func loadOTKMeta(tx *kv.Txn, userID, deviceID string) (*otkMeta, error) {
	m := &otkMeta{}
	err := tx.GetJSON(otkMetaKey(userID, deviceID), m)
	if errors.Is(err, kv.ErrNotFound) {
		err = nil
	}
	if m.Counts == nil {
		m.Counts = map[string]int{}
	}
	if m.Fallback == nil {
		m.Fallback = map[string]fallbackKey{}
	}
	return m, err
}

// counts is the one_time_key_counts clients see.
func (m *otkMeta) counts() map[string]int {
	out := map[string]int{algSignedCurve25519: 0}
	for alg, c := range m.Counts {
		if c > 0 {
			out[alg] = c
		}
	}
	return out
}

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
			return nil, fmt.Errorf("%w: key name %q is not algorithm:key_id", ErrInvalidParam, name)
		}
		var s string
		if json.Unmarshal(raw, &s) != nil && !isJSONObject(raw) {
			return nil, fmt.Errorf("%w: key %q is neither a string nor an object", ErrInvalidParam, name)
		}
		canonical, err := gomatrixserverlib.CanonicalJSON(raw)
		if err != nil {
			return nil, fmt.Errorf("%w: key %q: %v", ErrInvalidParam, name, err)
		}
		out = append(out, namedKey{name: name, alg: alg, id: id, raw: compactJSON(raw), canonical: canonical})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out, nil
}

// deviceKeysJSON is the part of device_keys the server looks at.
type deviceKeysJSON struct {
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
func (n *Node) UploadKeys(ctx context.Context, userID, deviceID string, deviceKeys json.RawMessage, oneTimeKeys, fallbackKeys map[string]json.RawMessage) (map[string]int, error) {
	// An empty object counts as absent: Synapse ignores one too, so a
	// client may send it when it has no identity keys to publish.
	hasDeviceKeys := !isAbsent(deviceKeys) && string(compactJSON(deviceKeys)) != "{}"
	var signed []byte
	if hasDeviceKeys {
		var dk deviceKeysJSON
		if !isJSONObject(deviceKeys) || json.Unmarshal(deviceKeys, &dk) != nil {
			return nil, fmt.Errorf("%w: device_keys is not a device keys object", ErrInvalidParam)
		}
		if dk.UserID != userID || dk.DeviceID != deviceID {
			return nil, fmt.Errorf("%w: device_keys are for %s/%s, not %s/%s", ErrInvalidParam, dk.UserID, dk.DeviceID, userID, deviceID)
		}
		if len(dk.Keys) == 0 {
			return nil, fmt.Errorf("%w: device_keys has no keys", ErrInvalidParam)
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
			return nil, fmt.Errorf("%w: more than one fallback key for %s", ErrInvalidParam, fallbacks[i].alg)
		}
	}

	var counts map[string]int
	write := func(tx *kv.Txn) (changed bool, err error) {
		if ok, err := tx.Has(deviceKey(userID, deviceID)); err != nil || !ok {
			if err == nil {
				err = fmt.Errorf("device %s: %w", deviceID, ErrNotFound)
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
		err = n.changeDeviceLists(ctx, 1, func(tx *kv.Txn) ([]string, error) {
			changed, err := write(tx)
			if err != nil || !changed {
				return nil, err
			}
			return []string{userID}, nil
		})
	} else {
		err = retryConflicts(ctx, func() error {
			return n.db.Update(func(tx *kv.Txn) error {
				_, err := write(tx)
				return err
			})
		})
	}
	if errors.Is(err, kv.ErrTxnTooBig) {
		return nil, fmt.Errorf("%w: too many keys in one upload", ErrTooLarge)
	}
	return counts, err
}

// storeDeviceKeys stores device keys and reports whether they changed. Keys
// whose signed content is unchanged are kept as they are; changed keys drop
// the signatures others made on the old ones.
func storeDeviceKeys(tx *kv.Txn, userID, deviceID string, raw json.RawMessage, signed []byte) (bool, error) {
	old, err := tx.Get(deviceKeysKey(userID, deviceID))
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
	return true, tx.Set(deviceKeysKey(userID, deviceID), compactJSON(raw))
}

// storeOneTimeKeys adds new one-time keys under the next upload sequence
// number, refusing a known key ID with a different key, and drops the
// oldest past maxOneTimeKeys.
func (n *Node) storeOneTimeKeys(tx *kv.Txn, userID, deviceID string, meta *otkMeta, keys []namedKey) error {
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
				return fmt.Errorf("%w: one-time key %s already exists with different content", ErrInvalidParam, k.name)
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
		n.log.Info("keys: dropped oldest one-time keys", "user", userID, "device", deviceID, "algorithm", alg, "dropped", dropped)
	}
	return nil
}

// OneTimeKeyCounts returns the number of unclaimed one-time keys of a
// device per algorithm (signed_curve25519 always present).
func (n *Node) OneTimeKeyCounts(ctx context.Context, userID, deviceID string) (map[string]int, error) {
	var counts map[string]int
	err := n.db.View(func(tx *kv.Txn) error {
		meta, err := loadOTKMeta(tx, userID, deviceID)
		counts = meta.counts()
		return err
	})
	return counts, err
}

// UnusedFallbackKeyTypes returns the algorithms for which a device has a
// fallback key that has not been claimed, sorted.
func (n *Node) UnusedFallbackKeyTypes(ctx context.Context, userID, deviceID string) ([]string, error) {
	out := []string{}
	err := n.db.View(func(tx *kv.Txn) error {
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

// ClaimKeys claims one key per requested device (user ID -> device ID ->
// algorithm): the oldest one-time key of that algorithm, which is deleted
// so no one else gets it, or else the device's fallback key, which is
// marked used but kept. The result maps user ID -> device ID ->
// "algorithm:key_id" -> key; devices with no key are left out, and so are
// other servers' users (ClaimAllKeys claims theirs from their servers).
func (n *Node) ClaimKeys(ctx context.Context, claims map[string]map[string]string) (map[string]map[string]map[string]json.RawMessage, error) {
	var out map[string]map[string]map[string]json.RawMessage
	err := retryConflicts(ctx, func() error {
		out = map[string]map[string]map[string]json.RawMessage{}
		return n.db.Update(func(tx *kv.Txn) error {
			for userID, byDevice := range claims {
				if !n.isLocalUser(userID) {
					n.log.Debug("keys: not claiming locally for a remote user", "user", userID)
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

// QueryKeys returns the device keys of the requested devices (user ID ->
// device IDs, an empty list meaning all of the user's devices), with each
// device's display name in unsigned.device_display_name, and the users'
// master and self-signing keys; the user-signing key only of requester.
// Signatures made later are merged in: those by the key's owner, and those
// by requester (others' signatures on a user's key are theirs to see).
// Local users with no keys get an empty device map; other servers' users
// are left out (QueryAllKeys asks their servers).
func (n *Node) QueryKeys(ctx context.Context, requester string, users map[string][]string) (
	deviceKeys map[string]map[string]json.RawMessage, masterKeys, selfSigningKeys, userSigningKeys map[string]json.RawMessage, err error,
) {
	deviceKeys = map[string]map[string]json.RawMessage{}
	masterKeys, selfSigningKeys, userSigningKeys = map[string]json.RawMessage{}, map[string]json.RawMessage{}, map[string]json.RawMessage{}
	err = n.db.View(func(tx *kv.Txn) error {
		for userID, deviceIDs := range users {
			if !n.isLocalUser(userID) {
				n.log.Debug("keys: not querying locally for a remote user", "user", userID)
				continue
			}
			signers := uniqueStrings([]string{userID, requester})
			byDevice, err := queryDeviceKeys(tx, userID, deviceIDs, signers)
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
func queryDeviceKeys(tx *kv.Txn, userID string, deviceIDs, signers []string) (map[string]json.RawMessage, error) {
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
		v, err := tx.Get(deviceKeysKey(userID, id))
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
		dev, err := readDevice(tx, userID, id)
		if errors.Is(err, ErrNotFound) {
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
		if dev.DisplayName != "" {
			unsigned["device_display_name"] = dev.DisplayName
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
	if err := jsonUnmarshal(raw, &obj); err != nil {
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

// crossSigningKeyJSON is a cross-signing key as uploaded.
type crossSigningKeyJSON struct {
	UserID string            `json:"user_id"`
	Usage  []string          `json:"usage"`
	Keys   map[string]string `json:"keys"`
}

// parsedCrossSigningKey is a checked cross-signing key.
type parsedCrossSigningKey struct {
	raw   json.RawMessage // compacted
	keyID string          // "ed25519:" + pub
	pub   string          // unpadded base64 public key
	key   ed25519.PublicKey
}

// parseCrossSigningKey checks a cross-signing key for userID and usage:
// its user ID and usage, and its single ed25519 key named after itself.
func parseCrossSigningKey(raw json.RawMessage, userID, usage string) (*parsedCrossSigningKey, error) {
	var k crossSigningKeyJSON
	if !isJSONObject(raw) || json.Unmarshal(raw, &k) != nil {
		return nil, fmt.Errorf("%w: %s key is not a cross-signing key object", ErrInvalidParam, usage)
	}
	if k.UserID != userID {
		return nil, fmt.Errorf("%w: %s key is for %q, not %s", ErrInvalidParam, usage, k.UserID, userID)
	}
	if !slices.Contains(k.Usage, usage) {
		return nil, fmt.Errorf("%w: %s key's usage %v lacks %q", ErrInvalidParam, usage, k.Usage, usage)
	}
	p, err := singleEd25519Key(k.Keys)
	if err != nil {
		return nil, fmt.Errorf("%w: %s key: %v", ErrInvalidParam, usage, err)
	}
	p.raw = compactJSON(raw)
	return p, nil
}

// parseStoredCrossSigningKey parses a key stored by UploadCrossSigningKeys.
func parseStoredCrossSigningKey(raw []byte) (*parsedCrossSigningKey, error) {
	var k crossSigningKeyJSON
	if err := jsonUnmarshal(raw, &k); err != nil {
		return nil, err
	}
	p, err := singleEd25519Key(k.Keys)
	if err != nil {
		return nil, fmt.Errorf("stored cross-signing key: %w", err)
	}
	p.raw = raw
	return p, nil
}

func singleEd25519Key(keys map[string]string) (*parsedCrossSigningKey, error) {
	if len(keys) != 1 {
		return nil, fmt.Errorf("%d keys, want exactly one", len(keys))
	}
	for keyID, pub := range keys {
		if keyID != "ed25519:"+pub {
			return nil, fmt.Errorf("key ID %q does not name its key", keyID)
		}
		b, err := decodeBase64(pub)
		if err != nil || len(b) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("key %q is not an ed25519 public key", pub)
		}
		return &parsedCrossSigningKey{keyID: keyID, pub: pub, key: ed25519.PublicKey(b)}, nil
	}
	panic("unreachable")
}

// loadCrossSigningKey reads a user's stored key of one usage (nil if none).
func loadCrossSigningKey(tx *kv.Txn, userID, usage string) (*parsedCrossSigningKey, error) {
	raw, err := tx.Get(crossSigningKey(userID, usage))
	if errors.Is(err, kv.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return parseStoredCrossSigningKey(raw)
}

// CrossSigningUploadNeedsAuth reports whether uploading these cross-signing
// keys (any may be empty) needs user-interactive auth: it does unless the
// user has no master key yet, or every key given equals the stored one (a
// retry of an upload whose response was lost).
func (n *Node) CrossSigningUploadNeedsAuth(ctx context.Context, userID string, master, selfSigning, userSigning json.RawMessage) (bool, error) {
	needs := false
	err := n.db.View(func(tx *kv.Txn) error {
		if ok, err := tx.Has(crossSigningKey(userID, UsageMaster)); err != nil || !ok {
			return err
		}
		for usage, raw := range map[string]json.RawMessage{UsageMaster: master, UsageSelfSigning: selfSigning, UsageUserSigning: userSigning} {
			if isAbsent(raw) {
				continue
			}
			stored, err := tx.Get(crossSigningKey(userID, usage))
			if errors.Is(err, kv.ErrNotFound) {
				needs = true
				return nil
			}
			if err != nil {
				return err
			}
			if !sameCanonical(stored, canonicalOrNil(raw)) {
				needs = true
				return nil
			}
		}
		return nil
	})
	return needs, err
}

// UploadCrossSigningKeys stores a user's cross-signing keys (any may be
// empty). Each must be the user's, have its usage and one ed25519 key; the
// self-signing and user-signing keys must be signed by the master key given
// or, without one, the stored one. A new master key drops the signatures
// others made on the old one. The upload is a device-list change.
func (n *Node) UploadCrossSigningKeys(ctx context.Context, userID string, master, selfSigning, userSigning json.RawMessage) error {
	given := map[string]*parsedCrossSigningKey{}
	for _, k := range []struct {
		usage string
		raw   json.RawMessage
	}{{UsageMaster, master}, {UsageSelfSigning, selfSigning}, {UsageUserSigning, userSigning}} {
		if isAbsent(k.raw) {
			continue
		}
		p, err := parseCrossSigningKey(k.raw, userID, k.usage)
		if err != nil {
			return err
		}
		given[k.usage] = p
	}
	if len(given) == 0 {
		return nil
	}
	return n.changeDeviceLists(ctx, 1, func(tx *kv.Txn) ([]string, error) {
		oldMaster, err := loadCrossSigningKey(tx, userID, UsageMaster)
		if err != nil {
			return nil, err
		}
		signing := given[UsageMaster]
		if signing == nil {
			signing = oldMaster
		}
		for _, usage := range []string{UsageSelfSigning, UsageUserSigning} {
			k := given[usage]
			if k == nil {
				continue
			}
			if signing == nil {
				return nil, fmt.Errorf("%w: no master key to check the %s key against", ErrMissingParam, usage)
			}
			if err := gomatrixserverlib.VerifyJSON(userID, gomatrixserverlib.KeyID(signing.keyID), signing.key, k.raw); err != nil {
				return nil, fmt.Errorf("%w: %s key is not signed by the master key: %v", ErrInvalidSignature, usage, err)
			}
		}
		for usage, k := range given {
			// A key named like a device would be ambiguous in signatures.
			if ok, err := tx.Has(deviceKey(userID, k.pub)); err != nil || ok {
				if err == nil {
					err = fmt.Errorf("%w: %s key ID is in use by a device", ErrForbidden, usage)
				}
				return nil, err
			}
		}
		if given[UsageMaster] != nil && oldMaster != nil && oldMaster.pub != given[UsageMaster].pub {
			if err := deletePrefix(tx, keySigPrefix(userID, oldMaster.pub)); err != nil {
				return nil, err
			}
		}
		for usage, k := range given {
			if err := tx.Set(crossSigningKey(userID, usage), k.raw); err != nil {
				return nil, err
			}
		}
		return []string{userID}, nil
	})
}

// UploadSignatures stores signatures that signer made on keys (user ID ->
// key ID -> the signed key object): on signer's own devices with their
// self-signing key, on signer's master key with one of their devices, and
// on another user's master key with signer's user-signing key. Each
// signature is checked; the ones refused are returned (user ID -> key ID ->
// reason) while the others are stored. Users whose keys gained signatures
// get a device-list change.
func (n *Node) UploadSignatures(ctx context.Context, signer string, signed map[string]map[string]json.RawMessage) (map[string]map[string]error, error) {
	var failures map[string]map[string]error
	err := n.changeDeviceLists(ctx, len(signed), func(tx *kv.Txn) ([]string, error) {
		failures = map[string]map[string]error{}
		fail := func(userID, keyID string, err error) {
			if failures[userID] == nil {
				failures[userID] = map[string]error{}
			}
			failures[userID][keyID] = err
		}
		var changed []string
		for target, byKey := range signed {
			keyIDs := make([]string, 0, len(byKey))
			for id := range byKey {
				keyIDs = append(keyIDs, id)
			}
			sort.Strings(keyIDs)
			for _, keyID := range keyIDs {
				if !n.isLocalUser(target) {
					fail(target, keyID, fmt.Errorf("%w: signing remote users' keys is not supported yet", ErrNotFound))
					continue
				}
				err := applySignature(tx, signer, target, keyID, byKey[keyID])
				if isRequestError(err) {
					fail(target, keyID, err)
					continue
				}
				if err != nil {
					return nil, err
				}
				changed = append(changed, target)
			}
		}
		return changed, nil
	})
	return failures, err
}

// isRequestError reports whether err is the request's fault (so a failure
// to report) rather than the server's.
func isRequestError(err error) bool {
	for _, e := range []error{ErrInvalidSignature, ErrInvalidParam, ErrMissingParam, ErrNotFound, ErrForbidden, ErrBadInput} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// applySignature checks and stores the signatures by signer in obj, the
// signed form of target's key keyID (a device ID or a master public key).
func applySignature(tx *kv.Txn, signer, target, keyID string, obj json.RawMessage) error {
	var body struct {
		Signatures map[string]map[string]string `json:"signatures"`
	}
	if !isJSONObject(obj) || json.Unmarshal(obj, &body) != nil {
		return fmt.Errorf("%w: not a signed key object", ErrInvalidParam)
	}
	mine := body.Signatures[signer]
	if len(mine) == 0 {
		return fmt.Errorf("%w: no signature by %s", ErrInvalidSignature, signer)
	}
	var stored []byte
	valid := map[string]string{}
	if target == signer {
		dk, err := tx.Get(deviceKeysKey(target, keyID))
		switch {
		case err == nil:
			// One of the signer's devices, signed with their self-signing key.
			ss, err := loadCrossSigningKey(tx, signer, UsageSelfSigning)
			if err != nil {
				return err
			}
			if ss == nil {
				return fmt.Errorf("%w: no self-signing key to sign devices with", ErrInvalidSignature)
			}
			stored = dk
			if sig, ok := mine[ss.keyID]; ok && verifySignature(signer, ss.keyID, ss.key, obj) {
				valid[ss.keyID] = sig
			}
		case errors.Is(err, kv.ErrNotFound):
			// The signer's master key, signed with one of their devices.
			m, err := loadCrossSigningKey(tx, signer, UsageMaster)
			if err != nil {
				return err
			}
			if m == nil || m.pub != keyID {
				return fmt.Errorf("%w: unknown key %s", ErrNotFound, keyID)
			}
			stored = m.raw
			for sigKeyID, sig := range mine {
				deviceID, ok := strings.CutPrefix(sigKeyID, "ed25519:")
				if !ok || sigKeyID == m.keyID {
					continue
				}
				pub, err := deviceEd25519Key(tx, signer, deviceID)
				if err != nil {
					return err
				}
				if pub != nil && verifySignature(signer, sigKeyID, pub, obj) {
					valid[sigKeyID] = sig
				}
			}
		default:
			return err
		}
	} else {
		// Another user's master key, signed with the signer's user-signing key.
		m, err := loadCrossSigningKey(tx, target, UsageMaster)
		if err != nil {
			return err
		}
		if m == nil || m.pub != keyID {
			return fmt.Errorf("%w: unknown master key %s of %s", ErrNotFound, keyID, target)
		}
		us, err := loadCrossSigningKey(tx, signer, UsageUserSigning)
		if err != nil {
			return err
		}
		if us == nil {
			return fmt.Errorf("%w: no user-signing key to sign other users with", ErrInvalidSignature)
		}
		stored = m.raw
		if sig, ok := mine[us.keyID]; ok && verifySignature(signer, us.keyID, us.key, obj) {
			valid[us.keyID] = sig
		}
	}
	a, errA := signedPart(stored)
	b, errB := signedPart(obj)
	if errA != nil || errB != nil || !bytes.Equal(a, b) {
		return fmt.Errorf("%w: the signed object does not match the stored key", ErrInvalidParam)
	}
	if len(valid) == 0 {
		return fmt.Errorf("%w: no valid signature by %s", ErrInvalidSignature, signer)
	}
	return storeSignatures(tx, signer, target, keyID, valid)
}

// storeSignatures merges new signatures by signer into what is stored for
// target's key, keeping only signatures by keys signer still has, so that
// a record cannot grow as keys are replaced.
func storeSignatures(tx *kv.Txn, signer, target, keyID string, sigs map[string]string) error {
	all := map[string]string{}
	if err := tx.GetJSON(keySigKey(target, keyID, signer), &all); err != nil && !errors.Is(err, kv.ErrNotFound) {
		return err
	}
	for k, v := range sigs {
		all[k] = v
	}
	live := map[string]bool{}
	for _, usage := range []string{UsageMaster, UsageSelfSigning, UsageUserSigning} {
		k, err := loadCrossSigningKey(tx, signer, usage)
		if err != nil {
			return err
		}
		if k != nil {
			live[k.keyID] = true
		}
	}
	for k := range all {
		if live[k] {
			continue
		}
		deviceID, _ := strings.CutPrefix(k, "ed25519:")
		if ok, err := tx.Has(deviceKey(signer, deviceID)); err != nil || !ok {
			if err != nil {
				return err
			}
			delete(all, k)
		}
	}
	return tx.SetJSON(keySigKey(target, keyID, signer), all)
}

// deviceEd25519Key returns a device's ed25519 identity key from its device
// keys (nil when it has none).
func deviceEd25519Key(tx *kv.Txn, userID, deviceID string) (ed25519.PublicKey, error) {
	var dk deviceKeysJSON
	err := tx.GetJSON(deviceKeysKey(userID, deviceID), &dk)
	if errors.Is(err, kv.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	b, err := decodeBase64(dk.Keys["ed25519:"+deviceID])
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil, nil
	}
	return ed25519.PublicKey(b), nil
}

func verifySignature(signer, keyID string, key ed25519.PublicKey, obj []byte) bool {
	return gomatrixserverlib.VerifyJSON(signer, gomatrixserverlib.KeyID(keyID), key, obj) == nil
}

// signedPart is the canonical JSON of an object without its signatures and
// unsigned fields: what a signature covers, and what must match when a key
// comes back with new signatures.
func signedPart(raw []byte) ([]byte, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
		return nil, fmt.Errorf("%w: not a JSON object", ErrInvalidParam)
	}
	delete(obj, "signatures")
	delete(obj, "unsigned")
	b, err := json.Marshal(obj)
	if err != nil {
		return nil, err
	}
	c, err := gomatrixserverlib.CanonicalJSON(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidParam, err)
	}
	return c, nil
}

// sameCanonical reports whether stored JSON is canonically equal to want.
func sameCanonical(stored []byte, want []byte) bool {
	c, err := gomatrixserverlib.CanonicalJSON(stored)
	return err == nil && want != nil && bytes.Equal(c, want)
}

func canonicalOrNil(raw []byte) []byte {
	c, err := gomatrixserverlib.CanonicalJSON(raw)
	if err != nil {
		return nil
	}
	return c
}

// compactJSON drops insignificant whitespace (raw is known to be valid).
func compactJSON(raw []byte) json.RawMessage {
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return json.RawMessage(raw)
	}
	return json.RawMessage(b.Bytes())
}

// isAbsent reports whether an optional JSON field was left out or null.
func isAbsent(raw json.RawMessage) bool {
	s := bytes.TrimSpace(raw)
	return len(s) == 0 || string(s) == "null"
}

// decodeBase64 decodes the unpadded base64 Matrix uses, accepting padding.
func decodeBase64(s string) ([]byte, error) {
	return base64.RawStdEncoding.DecodeString(strings.TrimRight(s, "="))
}
