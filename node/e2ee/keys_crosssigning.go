package e2ee

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/edgenode/edgenode/internal/jsontext"
	"github.com/edgenode/edgenode/kv"
	"github.com/edgenode/edgenode/node/core"
	"github.com/matrix-org/gomatrixserverlib"
)

// Cross-signing keys (keys/device_signing/upload) and signatures uploaded on
// devices' and users' keys afterwards (keys/signatures/upload).

// CrossSigningKeyJSON is the part of a cross-signing key, as uploaded,
// that the server looks at (inbound federation checks remote users' keys
// with it too).
type CrossSigningKeyJSON struct {
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
	var k CrossSigningKeyJSON
	if !jsontext.IsObject(raw) || json.Unmarshal(raw, &k) != nil {
		return nil, fmt.Errorf("%w: %s key is not a cross-signing key object", core.ErrInvalidParam, usage)
	}
	if k.UserID != userID {
		return nil, fmt.Errorf("%w: %s key is for %q, not %s", core.ErrInvalidParam, usage, k.UserID, userID)
	}
	if !slices.Contains(k.Usage, usage) {
		return nil, fmt.Errorf("%w: %s key's usage %v lacks %q", core.ErrInvalidParam, usage, k.Usage, usage)
	}
	p, err := singleEd25519Key(k.Keys)
	if err != nil {
		return nil, fmt.Errorf("%w: %s key: %v", core.ErrInvalidParam, usage, err)
	}
	p.raw = compactJSON(raw)
	return p, nil
}

// parseStoredCrossSigningKey parses a key stored by UploadCrossSigningKeys.
func parseStoredCrossSigningKey(raw []byte) (*parsedCrossSigningKey, error) {
	var k CrossSigningKeyJSON
	if err := core.DecodeJSON(raw, &k); err != nil {
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
func (n *E2EE) CrossSigningUploadNeedsAuth(ctx context.Context, userID string, master, selfSigning, userSigning json.RawMessage) (bool, error) {
	needs := false
	err := n.DB.View(func(tx *kv.Txn) error {
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
func (n *E2EE) UploadCrossSigningKeys(ctx context.Context, userID string, master, selfSigning, userSigning json.RawMessage) error {
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
	return n.ChangeDeviceLists(ctx, 1, func(tx *kv.Txn) ([]string, error) {
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
				return nil, fmt.Errorf("%w: no master key to check the %s key against", core.ErrMissingParam, usage)
			}
			if err := gomatrixserverlib.VerifyJSON(userID, gomatrixserverlib.KeyID(signing.keyID), signing.key, k.raw); err != nil {
				return nil, fmt.Errorf("%w: %s key is not signed by the master key: %v", core.ErrInvalidSignature, usage, err)
			}
		}
		for usage, k := range given {
			// A key named like a device would be ambiguous in signatures.
			if ok, err := tx.Has(core.DeviceKey(userID, k.pub)); err != nil || ok {
				if err == nil {
					err = fmt.Errorf("%w: %s key ID is in use by a device", core.ErrForbidden, usage)
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
func (n *E2EE) UploadSignatures(ctx context.Context, signer string, signed map[string]map[string]json.RawMessage) (map[string]map[string]error, error) {
	var failures map[string]map[string]error
	err := n.ChangeDeviceLists(ctx, len(signed), func(tx *kv.Txn) ([]string, error) {
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
				if !n.IsLocalUser(target) {
					fail(target, keyID, fmt.Errorf("%w: signing remote users' keys is not supported yet", core.ErrNotFound))
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
	for _, e := range []error{core.ErrInvalidSignature, core.ErrInvalidParam, core.ErrMissingParam, core.ErrNotFound, core.ErrForbidden, core.ErrBadInput} {
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
	if !jsontext.IsObject(obj) || json.Unmarshal(obj, &body) != nil {
		return fmt.Errorf("%w: not a signed key object", core.ErrInvalidParam)
	}
	mine := body.Signatures[signer]
	if len(mine) == 0 {
		return fmt.Errorf("%w: no signature by %s", core.ErrInvalidSignature, signer)
	}
	var stored []byte
	valid := map[string]string{}
	if target == signer {
		dk, err := tx.Get(DeviceKeysKey(target, keyID))
		switch {
		case err == nil:
			// One of the signer's devices, signed with their self-signing key.
			ss, err := loadCrossSigningKey(tx, signer, UsageSelfSigning)
			if err != nil {
				return err
			}
			if ss == nil {
				return fmt.Errorf("%w: no self-signing key to sign devices with", core.ErrInvalidSignature)
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
				return fmt.Errorf("%w: unknown key %s", core.ErrNotFound, keyID)
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
			return fmt.Errorf("%w: unknown master key %s of %s", core.ErrNotFound, keyID, target)
		}
		us, err := loadCrossSigningKey(tx, signer, UsageUserSigning)
		if err != nil {
			return err
		}
		if us == nil {
			return fmt.Errorf("%w: no user-signing key to sign other users with", core.ErrInvalidSignature)
		}
		stored = m.raw
		if sig, ok := mine[us.keyID]; ok && verifySignature(signer, us.keyID, us.key, obj) {
			valid[us.keyID] = sig
		}
	}
	a, errA := signedPart(stored)
	b, errB := signedPart(obj)
	if errA != nil || errB != nil || !bytes.Equal(a, b) {
		return fmt.Errorf("%w: the signed object does not match the stored key", core.ErrInvalidParam)
	}
	if len(valid) == 0 {
		return fmt.Errorf("%w: no valid signature by %s", core.ErrInvalidSignature, signer)
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
		if ok, err := tx.Has(core.DeviceKey(signer, deviceID)); err != nil || !ok {
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
	var dk DeviceKeysJSON
	err := tx.GetJSON(DeviceKeysKey(userID, deviceID), &dk)
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
