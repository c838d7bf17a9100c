// Package federation is edgenode's server-server API: the inbound handler and
// the outbound client. It is transport-agnostic: the handler is an
// http.Handler and the client sends through any http.RoundTripper; the
// libp2p transport supplies both and the authenticated peer of a request.
//
// Server names are the lowercase hex of the server's ed25519 public key, so
// every signature is checked offline from the name alone: no key server is
// consulted, and a name that does not decode to a key is refused. The
// derivation and the key ring that checks it live in internal/identity.
package federation

import (
	"encoding/json"
	"time"

	"github.com/edgenode/edgenode/internal/identity"
	"github.com/matrix-org/gomatrixserverlib"
	"github.com/matrix-org/gomatrixserverlib/spec"
)

// serverKeys builds n's signed key object (the /_matrix/key/v2/server body).
func serverKeys(n identityNode, now time.Time) ([]byte, error) {
	fields := gomatrixserverlib.ServerKeyFields{
		ServerName:    spec.ServerName(n.ServerName()),
		VerifyKeys:    map[gomatrixserverlib.KeyID]gomatrixserverlib.VerifyKey{identity.KeyID: {Key: spec.Base64Bytes(n.PublicKey())}},
		ValidUntilTS:  spec.AsTimestamp(now.Add(identity.KeyValidity)),
		OldVerifyKeys: map[gomatrixserverlib.KeyID]gomatrixserverlib.OldVerifyKey{},
	}
	raw, err := json.Marshal(fields)
	if err != nil {
		return nil, err
	}
	return gomatrixserverlib.SignJSON(n.ServerName(), identity.KeyID, n.SigningKey(), raw)
}
