// Package identity derives a node's Matrix identity from its one ed25519
// key: the server name (the lowercase hex of the public key), the public
// key back from a server name, the signing key's ID, and a key ring that
// checks any key-derived server's signatures offline, from its name alone.
//
// It is a leaf: it imports no edgenode package (only the standard library
// and gomatrixserverlib), so node, federation, app and the tests all share
// one derivation without importing each other.
package identity

import (
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/matrix-org/gomatrixserverlib"
)

// KeyID is the ID of a node's one signing key.
const KeyID gomatrixserverlib.KeyID = "ed25519:edgenode"

// KeyValidity is how far in the future derived keys (and a node's published
// key object) are said to be valid. A derived key never changes, so this
// only has to satisfy callers that check validity.
const KeyValidity = 7 * 24 * time.Hour

// ErrNotKeyDerived is returned for a server name that is not the lowercase
// hex of an ed25519 public key.
var ErrNotKeyDerived = errors.New("server name is not a key-derived name")

// ServerNameForKey is the server name derived from a public key: its
// lowercase hex, so that any node can check signatures offline from the
// name alone.
func ServerNameForKey(pub ed25519.PublicKey) string {
	return hex.EncodeToString(pub)
}

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
