package userdir

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"github.com/edgenode/edgenode/kv"
)

func TestTokens(t *testing.T) {
	long := strings.Repeat("x", 100)
	cases := []struct {
		name       string
		userID, dn string
		want       []string
	}{
		{"localpart, server and name", "@alice:example.org", "Alice Cooper", []string{"alice", "example", "org", "cooper"}},
		{"case and punctuation", "@Bob_B:hs", "Dr. BOB-Builder!", []string{"bob", "b", "hs", "dr", "builder"}},
		{"unicode", "@z:hs", "Élodie Ünsal 山田", []string{"z", "hs", "élodie", "ünsal", "山田"}},
		{"long word truncated", "@a:hs", long, []string{"a", "hs", long[:maxTokenBytes]}},
		{"bounded count", "@a:hs", "b c d e f g h i j k l m n o p q r s t", []string{"a", "hs", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m", "n", "o"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := tokens(c.userID, c.dn); !slices.Equal(got, c.want) {
				t.Errorf("tokens(%q, %q) = %q, want %q", c.userID, c.dn, got, c.want)
			}
		})
	}
	if got := truncate("aé", 2); got != "a" {
		t.Errorf("truncate split a rune: %q", got)
	}
}

// TestTokenPrefix: the open prefix of a token is a prefix of the keys of
// every longer token and of no key of a token that does not start with it.
func TestTokenPrefix(t *testing.T) {
	p := tokenPrefix("ali")
	for _, tok := range []string{"ali", "alice", "alibaba"} {
		if !bytes.HasPrefix(tokenKey(tok, "@u:hs", "!r:hs"), p) {
			t.Errorf("%q not under the prefix of ali", tok)
		}
	}
	for _, tok := range []string{"al", "bob", "aliz"[:2] + "x"} {
		if bytes.HasPrefix(tokenKey(tok, "@u:hs", "!r:hs"), p) {
			t.Errorf("%q under the prefix of ali", tok)
		}
	}
	if !bytes.HasPrefix(kv.Key(tToken, "ali"), p) {
		t.Error("kv's encoding changed: tokenPrefix no longer drops only the terminator")
	}
}
