package core

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strings"
)

// IsLocalUser reports whether userID belongs to this server.
func (n *Node) IsLocalUser(userID string) bool {
	return strings.HasSuffix(userID, ":"+n.serverName) && strings.HasPrefix(userID, "@")
}

// LocalpartOf accepts "alice" or "@alice:thisserver" and returns the
// localpart ("alice"; a bare localpart is lowercased); another server's user
// is ErrBadInput.
func (n *Node) LocalpartOf(user string) (string, error) {
	if !strings.HasPrefix(user, "@") {
		return strings.ToLower(user), nil
	}
	lp, server, ok := strings.Cut(user[1:], ":")
	if !ok || server != n.ServerName() {
		return "", fmt.Errorf("%w: %s is not a local user", ErrBadInput, user)
	}
	return lp, nil
}

// RandomString returns n random characters from [A-Za-z0-9-_].
func RandomString(n int) string {
	b := make([]byte, (n*6+7)/8)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err)) // never fails on supported platforms
	}
	return base64.RawURLEncoding.EncodeToString(b)[:n]
}
