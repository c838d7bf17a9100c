// Package p2ptransport is edgenode's libp2p host: identity, QUIC and TCP
// transports, static and mDNS peers, peer lookup in edgenode's own Kademlia
// DHT, NAT traversal (AutoNAT, circuit relays, hole punching, an optional
// relay service), HTTP over libp2p streams (relayed connections included),
// and peer up/down events.
//
// One ed25519 key is the libp2p identity and the Matrix signing key. The
// Matrix server name of a node is the lowercase hex of its 32-byte ed25519
// public key; the libp2p peer ID is derived from the same key, so the two can
// be converted into each other offline (ed25519 peer IDs embed the public key
// as an identity multihash).
//
// Of this module it imports only leaves (internal/identity for the name and
// key derivation, internal/devprofile for the default profile).
package p2ptransport

import (
	"errors"
	"fmt"

	"github.com/edgenode/edgenode/internal/identity"
	"github.com/libp2p/go-libp2p/core/crypto"
	crypto_pb "github.com/libp2p/go-libp2p/core/crypto/pb"
	"github.com/libp2p/go-libp2p/core/peer"
)

// ErrMalformedServerName is returned for a server name that is not 64
// lowercase hex characters.
var ErrMalformedServerName = errors.New("p2ptransport: server name is not 64 lowercase hex characters")

// ErrNotEd25519 is returned for a peer whose key is not ed25519 (or whose
// public key cannot be extracted from its ID).
var ErrNotEd25519 = errors.New("p2ptransport: peer is not an ed25519 peer")

// ServerNameFromPeer returns the Matrix server name of an ed25519 peer: the
// lowercase hex of its 32-byte public key. It works offline.
func ServerNameFromPeer(id peer.ID) (string, error) {
	if err := id.Validate(); err != nil {
		return "", fmt.Errorf("%w: %v", ErrNotEd25519, err)
	}
	pk, err := id.ExtractPublicKey()
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrNotEd25519, err)
	}
	if pk.Type() != crypto_pb.KeyType_Ed25519 {
		return "", fmt.Errorf("%w: key type %s", ErrNotEd25519, pk.Type())
	}
	raw, err := pk.Raw()
	if err != nil || len(raw) != 32 {
		return "", fmt.Errorf("%w: bad raw key", ErrNotEd25519)
	}
	return identity.ServerNameForKey(raw), nil
}

// PeerFromServerName returns the libp2p peer ID for a server name produced
// by ServerNameFromPeer. Only the canonical form (exactly 64 lowercase hex
// characters, no port) is accepted. It works offline.
func PeerFromServerName(name string) (peer.ID, error) {
	raw, err := identity.PublicKeyFromServerName(name)
	if err != nil {
		return "", ErrMalformedServerName
	}
	pk, err := crypto.UnmarshalEd25519PublicKey(raw)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrMalformedServerName, err)
	}
	return peer.IDFromPublicKey(pk)
}
