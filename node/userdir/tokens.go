package userdir

import (
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Bounds on what one member puts in the index, so a hostile display name
// cannot make a member cost more than a few keys.
const (
	// maxTokenBytes truncates a word (at a rune boundary); search words are
	// truncated the same way, so a prefix match still works on long words.
	maxTokenBytes = 32
	// maxTokens is the most tokens a member has in one room: those of the
	// user ID first, then the display name's.
	maxTokens = 16
	// maxNameBytes is how much of a display name is read for words.
	maxNameBytes = 256
	// maxSearchWords is how many words of a search term count.
	maxSearchWords = 8
)

// words splits s into lowercase words of letters and digits, each
// truncated to maxTokenBytes, at most max of them, without repeats.
func words(s string, max int) []string {
	var out []string
	for _, w := range strings.FieldsFunc(s, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) }) {
		w = truncate(strings.ToLower(w), maxTokenBytes)
		if w == "" || slices.Contains(out, w) {
			continue
		}
		if len(out) == max {
			break
		}
		out = append(out, w)
	}
	return out
}

// tokens are the words a member is found by: those of the user ID
// (localpart and server name) and of the display name.
func tokens(userID, displayName string) []string {
	out := words(strings.TrimPrefix(userID, "@"), maxTokens)
	for _, w := range words(truncate(displayName, maxNameBytes), maxTokens) {
		if len(out) == maxTokens {
			break
		}
		if !slices.Contains(out, w) {
			out = append(out, w)
		}
	}
	return out
}

// matchesAll reports whether every word is a prefix of one of toks.
func matchesAll(toks, ws []string) bool {
	for _, w := range ws {
		found := false
		for _, t := range toks {
			if strings.HasPrefix(t, w) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// truncate cuts s to at most n bytes without splitting a rune.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
