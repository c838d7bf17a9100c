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
// This package must not import any other edgenode package.
package p2ptransport

import (
	"encoding/hex"
	"errors"
	"fmt"

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
	return hex.EncodeToString(raw), nil
}

// PeerFromServerName returns the libp2p peer ID for a server name produced
// by ServerNameFromPeer. Only the canonical form (exactly 64 lowercase hex
// characters, no port) is accepted. It works offline.
func PeerFromServerName(name string) (peer.ID, error) {
	if len(name) != 64 {
		return "", ErrMalformedServerName
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return "", ErrMalformedServerName
		}
	}
	raw, err := hex.DecodeString(name)
	if err != nil {
		return "", ErrMalformedServerName
	}
	pk, err := crypto.UnmarshalEd25519PublicKey(raw)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrMalformedServerName, err)
	}
	return peer.IDFromPublicKey(pk)
}
