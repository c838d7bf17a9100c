package media

import (
	"crypto/rand"
	"fmt"
	"strings"
)

// MaxIDLength bounds a media ID's length.
const MaxIDLength = 255

// maxServerNameLength bounds an origin's length (the spec's server name bound).
const maxServerNameLength = 255

// ValidID reports whether id is a media ID this store accepts: 1 to
// MaxIDLength characters of [A-Za-z0-9_-] (the spec's grammar), so it
// can never name a path (no '/', '.', '\\' or NUL).
func ValidID(id string) bool {
	if id == "" || len(id) > MaxIDLength {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// ValidServerName reports whether name looks like a server name: a
// hostname, IPv4 or bracketed IPv6 literal with an optional port. It is a
// syntax check only.
func ValidServerName(name string) bool {
	if name == "" || len(name) > maxServerNameLength {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte(".-:[]", c) >= 0) {
			return false
		}
	}
	return true
}

// newID returns a random media ID: 24 characters of [A-Za-z0-9] (142 bits).
func newID() string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	var b [24]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("media: crypto/rand: %v", err)) // never fails on supported platforms
	}
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b[:])
}
