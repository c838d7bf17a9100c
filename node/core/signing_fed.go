package core

import "crypto/ed25519"

// SigningKey is the node's ed25519 private key (its Matrix signing key, key ID
// KeyID). The federation package needs it to sign X-Matrix requests and the
// key/v2/server response; nothing else should hold on to it.
func (n *Node) SigningKey() ed25519.PrivateKey { return n.key }
