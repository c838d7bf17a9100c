package core

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strings"
)

// isLocalUser reports whether userID belongs to this server.
func (n *Node) IsLocalUser(userID string) bool {
	return strings.HasSuffix(userID, ":"+n.serverName) && strings.HasPrefix(userID, "@")
}

// randomString returns n random characters from [A-Za-z0-9-_].
func RandomString(n int) string {
	b := make([]byte, (n*6+7)/8)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err)) // never fails on supported platforms
	}
	return base64.RawURLEncoding.EncodeToString(b)[:n]
}
