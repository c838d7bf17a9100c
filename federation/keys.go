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
	"crypto/ed25519"
	"encoding/json"
	"time"

	"github.com/edgenode/edgenode/node"
	"github.com/matrix-org/gomatrixserverlib"
	"github.com/matrix-org/gomatrixserverlib/spec"
)

// ErrNotKeyDerived is returned for a server name that is not the lowercase
// hex of an ed25519 public key (it is node.ErrNotKeyDerived).
var ErrNotKeyDerived = node.ErrNotKeyDerived

// keyValidity is how far in the future our published key object is said to
// be valid.
const keyValidity = node.DerivedKeyValidity

// PublicKeyFromServerName decodes the ed25519 public key a server name is
// derived from: exactly 64 lowercase hex characters. See
// node.PublicKeyFromServerName, which it calls.
func PublicKeyFromServerName(name string) (ed25519.PublicKey, error) {
	return node.PublicKeyFromServerName(name)
}

// KeyRing verifies JSON signatures and answers key lookups for any
// key-derived server name by decoding the key from the name. It is
// node.DerivedKeyRing (one implementation, which the node also uses to check
// the signatures of inbound PDUs): it implements
// gomatrixserverlib.JSONVerifier and gomatrixserverlib.KeyDatabase.
type KeyRing = node.DerivedKeyRing

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
