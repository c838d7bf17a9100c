package identity

import (
	"context"
	"fmt"
	"time"

	"github.com/matrix-org/gomatrixserverlib"
	"github.com/matrix-org/gomatrixserverlib/spec"
)

// KeyRing verifies JSON signatures and answers key lookups for any
// key-derived server name by decoding the key from the name: no key server
// is consulted. It implements gomatrixserverlib.JSONVerifier and
// gomatrixserverlib.KeyDatabase (so it can also back a
// *gomatrixserverlib.KeyRing where the library needs one). The node checks
// inbound PDUs with it and federation checks requests with it.
type KeyRing struct {
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

var (
	_ gomatrixserverlib.JSONVerifier = KeyRing{}
	_ gomatrixserverlib.KeyDatabase  = KeyRing{}
)

// LibraryKeyRing is a *gomatrixserverlib.KeyRing backed only by derived
// keys, for library functions (event signature checks) that want one.
func LibraryKeyRing() *gomatrixserverlib.KeyRing {
	return &gomatrixserverlib.KeyRing{KeyDatabase: KeyRing{}}
}

func (k KeyRing) now() time.Time {
	if k.Now != nil {
		return k.Now()
	}
	return time.Now()
}

// VerifyJSONs implements gomatrixserverlib.JSONVerifier: a message is valid
// when it carries a valid signature by key ID KeyID from the key its server
// name is derived from.
func (k KeyRing) VerifyJSONs(_ context.Context, requests []gomatrixserverlib.VerifyJSONRequest) ([]gomatrixserverlib.VerifyJSONResult, error) {
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
func (k KeyRing) FetchKeys(_ context.Context, requests map[gomatrixserverlib.PublicKeyLookupRequest]spec.Timestamp) (map[gomatrixserverlib.PublicKeyLookupRequest]gomatrixserverlib.PublicKeyLookupResult, error) {
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
			ValidUntilTS: max(now, atTS) + spec.Timestamp(KeyValidity.Milliseconds()),
			ExpiredTS:    gomatrixserverlib.PublicKeyNotExpired,
		}
	}
	return out, nil
}

// FetcherName implements gomatrixserverlib.KeyFetcher.
func (KeyRing) FetcherName() string { return "edgenode-derived-keys" }

// StoreKeys implements gomatrixserverlib.KeyDatabase; derived keys need no
// storage, so it stores nothing.
func (KeyRing) StoreKeys(context.Context, map[gomatrixserverlib.PublicKeyLookupRequest]gomatrixserverlib.PublicKeyLookupResult) error {
	return nil
}
