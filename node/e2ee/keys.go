package e2ee

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/edgenode/edgenode/kv"
	"github.com/edgenode/edgenode/node/core"
	"github.com/matrix-org/gomatrixserverlib"
)

// End-to-end encryption keys: each device's identity keys (device_keys),
// its one-time keys and one fallback key per algorithm, each user's
// cross-signing keys, and signatures made on those keys afterwards. The
// server only stores and hands these out; it checks signatures where the
// spec says a key must be signed by another, and never sees a private key.
//
// Each concern has its own file: keys_upload.go (device, one-time and
// fallback keys), keys_query.go, keys_claim.go and keys_crosssigning.go
// (cross-signing keys and the signatures uploaded on keys afterwards).
// This file holds what they share: the one-time key record and the JSON and
// signature helpers.

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

func verifySignature(signer, keyID string, key ed25519.PublicKey, obj []byte) bool {
	return gomatrixserverlib.VerifyJSON(signer, gomatrixserverlib.KeyID(keyID), key, obj) == nil
}

// signedPart is the canonical JSON of an object without its signatures and
// unsigned fields: what a signature covers, and what must match when a key
// comes back with new signatures.
func signedPart(raw []byte) ([]byte, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
		return nil, fmt.Errorf("%w: not a JSON object", core.ErrInvalidParam)
	}
	delete(obj, "signatures")
	delete(obj, "unsigned")
	b, err := json.Marshal(obj)
	if err != nil {
		return nil, err
	}
	c, err := gomatrixserverlib.CanonicalJSON(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", core.ErrInvalidParam, err)
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
