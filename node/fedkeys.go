package node

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/matrix-org/gomatrixserverlib"
	"github.com/matrix-org/gomatrixserverlib/spec"
)

// ErrNotKeyDerived is returned for a server name that is not the lowercase
// hex of an ed25519 public key.
var ErrNotKeyDerived = errors.New("server name is not a key-derived name")

// DerivedKeyValidity is how far in the future derived keys (and a node's
// published key object) are said to be valid. A derived key never changes, so
// this only has to satisfy callers that check validity.
const DerivedKeyValidity = 7 * 24 * time.Hour

// PublicKeyFromServerName decodes the ed25519 public key a server name is
// derived from: exactly 64 lowercase hex characters. It is the inverse of
// ServerNameForKey.
func PublicKeyFromServerName(name string) (ed25519.PublicKey, error) {
	if len(name) != 2*ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: %q has %d characters, want %d", ErrNotKeyDerived, name, len(name), 2*ed25519.PublicKeySize)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return nil, fmt.Errorf("%w: %q is not lowercase hex", ErrNotKeyDerived, name)
		}
	}
	b, err := hex.DecodeString(name)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotKeyDerived, err)
	}
	return ed25519.PublicKey(b), nil
}

// DerivedKeyRing verifies JSON signatures and answers key lookups for any
// key-derived server name by decoding the key from the name: no key server is
// consulted. It implements gomatrixserverlib.JSONVerifier and
// gomatrixserverlib.KeyDatabase (so it can also back a
// *gomatrixserverlib.KeyRing where the library needs one). It is the one
// implementation; federation.KeyRing is this type.
type DerivedKeyRing struct {
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

var (
	_ gomatrixserverlib.JSONVerifier = DerivedKeyRing{}
	_ gomatrixserverlib.KeyDatabase  = DerivedKeyRing{}
)

func (k DerivedKeyRing) now() time.Time {
	if k.Now != nil {
		return k.Now()
	}
	return time.Now()
}

// VerifyJSONs implements gomatrixserverlib.JSONVerifier: a message is valid
// when it carries a valid signature by key ID KeyID from the key its server
// name is derived from.
func (k DerivedKeyRing) VerifyJSONs(_ context.Context, requests []gomatrixserverlib.VerifyJSONRequest) ([]gomatrixserverlib.VerifyJSONResult, error) {
	results := make([]gomatrixserverlib.VerifyJSONResult, len(requests))
	for i, req := range requests {
		pub, err := PublicKeyFromServerName(string(req.ServerName))
		if err != nil {
			results[i].Error = err
			continue
		}
		if err := gomatrixserverlib.VerifyJSON(string(req.ServerName), KeyID, pub, req.Message); err != nil {
			results[i].Error = fmt.Errorf("signature of %s: %w", req.ServerName, err)
		}
	}
	return results, nil
}

// FetchKeys implements gomatrixserverlib.KeyFetcher: it answers for every
// request whose server name is key-derived and whose key ID is KeyID, and
// leaves the others out of the result.
func (k DerivedKeyRing) FetchKeys(_ context.Context, requests map[gomatrixserverlib.PublicKeyLookupRequest]spec.Timestamp) (map[gomatrixserverlib.PublicKeyLookupRequest]gomatrixserverlib.PublicKeyLookupResult, error) {
	out := make(map[gomatrixserverlib.PublicKeyLookupRequest]gomatrixserverlib.PublicKeyLookupResult, len(requests))
	now := spec.AsTimestamp(k.now())
	for req, atTS := range requests {
		if req.KeyID != KeyID {
			continue
		}
		pub, err := PublicKeyFromServerName(string(req.ServerName))
		if err != nil {
			continue
		}
		out[req] = gomatrixserverlib.PublicKeyLookupResult{
			VerifyKey:    gomatrixserverlib.VerifyKey{Key: spec.Base64Bytes(pub)},
			ValidUntilTS: max(now, atTS) + spec.Timestamp(DerivedKeyValidity.Milliseconds()),
			ExpiredTS:    gomatrixserverlib.PublicKeyNotExpired,
		}
	}
	return out, nil
}

// FetcherName implements gomatrixserverlib.KeyFetcher.
func (DerivedKeyRing) FetcherName() string { return "edgenode-derived-keys" }

// StoreKeys implements gomatrixserverlib.KeyDatabase; derived keys need no
// storage, so it stores nothing.
func (DerivedKeyRing) StoreKeys(context.Context, map[gomatrixserverlib.PublicKeyLookupRequest]gomatrixserverlib.PublicKeyLookupResult) error {
	return nil
}
