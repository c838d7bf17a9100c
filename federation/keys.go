// Package federation is edgenode's server-server API: the inbound handler and
// the outbound client. It is transport-agnostic: the handler is an
// http.Handler and the client sends through any http.RoundTripper; the
// libp2p transport supplies both and the authenticated peer of a request.
//
// Server names are the lowercase hex of the server's ed25519 public key, so
// every signature is checked offline from the name alone: no key server is
// consulted, and a name that does not decode to a key is refused.
package federation

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/edgenode/edgenode/node"
	"github.com/matrix-org/gomatrixserverlib"
	"github.com/matrix-org/gomatrixserverlib/spec"
)

// ErrNotKeyDerived is returned for a server name that is not the lowercase
// hex of an ed25519 public key.
var ErrNotKeyDerived = errors.New("federation: server name is not a key-derived name")

// keyValidity is how far in the future derived keys and our published key
// object are said to be valid. A derived key never changes, so this only has
// to satisfy callers that check validity.
const keyValidity = 7 * 24 * time.Hour

// PublicKeyFromServerName decodes the ed25519 public key a server name is
// derived from: exactly 64 lowercase hex characters.
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

// KeyRing verifies JSON signatures and answers key lookups for any
// key-derived server name by decoding the key from the name. It implements
// gomatrixserverlib.JSONVerifier and gomatrixserverlib.KeyDatabase (so it can
// also back a *gomatrixserverlib.KeyRing where the library needs one).
type KeyRing struct {
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

var (
	_ gomatrixserverlib.JSONVerifier = KeyRing{}
	_ gomatrixserverlib.KeyDatabase  = KeyRing{}
)

func (k KeyRing) now() time.Time {
	if k.Now != nil {
		return k.Now()
	}
	return time.Now()
}

// VerifyJSONs implements gomatrixserverlib.JSONVerifier: a message is valid
// when it carries a valid signature by key ID node.KeyID from the key its
// server name is derived from.
func (k KeyRing) VerifyJSONs(_ context.Context, requests []gomatrixserverlib.VerifyJSONRequest) ([]gomatrixserverlib.VerifyJSONResult, error) {
	results := make([]gomatrixserverlib.VerifyJSONResult, len(requests))
	for i, req := range requests {
		pub, err := PublicKeyFromServerName(string(req.ServerName))
		if err != nil {
			results[i].Error = err
			continue
		}
		if err := gomatrixserverlib.VerifyJSON(string(req.ServerName), node.KeyID, pub, req.Message); err != nil {
			results[i].Error = fmt.Errorf("federation: signature of %s: %w", req.ServerName, err)
		}
	}
	return results, nil
}

// FetchKeys implements gomatrixserverlib.KeyFetcher: it answers for every
// request whose server name is key-derived and whose key ID is node.KeyID,
// and leaves the others out of the result.
func (k KeyRing) FetchKeys(_ context.Context, requests map[gomatrixserverlib.PublicKeyLookupRequest]spec.Timestamp) (map[gomatrixserverlib.PublicKeyLookupRequest]gomatrixserverlib.PublicKeyLookupResult, error) {
	out := make(map[gomatrixserverlib.PublicKeyLookupRequest]gomatrixserverlib.PublicKeyLookupResult, len(requests))
	now := spec.AsTimestamp(k.now())
	for req, atTS := range requests {
		if req.KeyID != node.KeyID {
			continue
		}
		pub, err := PublicKeyFromServerName(string(req.ServerName))
		if err != nil {
			continue
		}
		out[req] = gomatrixserverlib.PublicKeyLookupResult{
			VerifyKey:    gomatrixserverlib.VerifyKey{Key: spec.Base64Bytes(pub)},
			ValidUntilTS: max(now, atTS) + spec.Timestamp(keyValidity.Milliseconds()),
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

// LibraryKeyRing is a *gomatrixserverlib.KeyRing backed only by derived keys,
// for library functions (event signature checks) that want one.
func LibraryKeyRing() *gomatrixserverlib.KeyRing {
	return &gomatrixserverlib.KeyRing{KeyDatabase: KeyRing{}}
}

// serverKeys builds n's signed key object (the /_matrix/key/v2/server body).
func serverKeys(n *node.Node, now time.Time) ([]byte, error) {
	fields := gomatrixserverlib.ServerKeyFields{
		ServerName:    spec.ServerName(n.ServerName()),
		VerifyKeys:    map[gomatrixserverlib.KeyID]gomatrixserverlib.VerifyKey{node.KeyID: {Key: spec.Base64Bytes(n.PublicKey())}},
		ValidUntilTS:  spec.AsTimestamp(now.Add(keyValidity)),
		OldVerifyKeys: map[gomatrixserverlib.KeyID]gomatrixserverlib.OldVerifyKey{},
	}
	raw, err := json.Marshal(fields)
	if err != nil {
		return nil, err
	}
	return gomatrixserverlib.SignJSON(n.ServerName(), node.KeyID, n.SigningKey(), raw)
}
