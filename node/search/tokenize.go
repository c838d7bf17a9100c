package search

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Tokenization: text is lowercased (Unicode-aware, strings.ToLower) and split
// on every rune that is neither a letter nor a digit. A run of Han, Hiragana
// or Katakana is split into single characters, since those scripts do not
// separate words with spaces; searching a phrase in them then means all of
// its characters (an AND of unigrams), which finds it, if loosely.
//
// The same function tokenizes events and search terms, so a token truncated
// at MaxTokenBytes on both sides still matches.
const (
	// MaxTokenBytes bounds a token's length in bytes (cut at a rune
	// boundary): longer runs (URLs, base64) are indexed by their start only.
	MaxTokenBytes = 64
	// MaxTokensPerEvent bounds the distinct tokens indexed for one event
	// field, so an event cannot write more than this many postings per field.
	MaxTokensPerEvent = 512
)

// Tokens splits text into its tokens, in order of first appearance, with
// how often each occurs. At most max distinct tokens are kept (further new
// ones are dropped; occurrences of kept ones are still counted).
func Tokens(text string, max int) (tokens []string, counts map[string]int) {
	counts = map[string]int{}
	add := func(tok string) {
		if tok == "" {
			return
		}
		if len(tok) > MaxTokenBytes {
			tok = cutRunes(tok, MaxTokenBytes)
		}
		if _, ok := counts[tok]; !ok {
			if len(tokens) >= max {
				return
			}
			tokens = append(tokens, tok)
		}
		counts[tok]++
	}
	lower := strings.ToLower(text)
	start := -1
	for i, r := range lower {
		switch {
		case splitsAlone(r):
			if start >= 0 {
				add(lower[start:i])
				start = -1
			}
			add(string(r))
		case unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.Is(unicode.Mn, r):
			if start < 0 {
				start = i
			}
		default:
			if start >= 0 {
				add(lower[start:i])
				start = -1
			}
		}
	}
	if start >= 0 {
		add(lower[start:])
	}
	return tokens, counts
}

// splitsAlone reports whether r is a token of its own: a character of a
// script written without spaces between words.
func splitsAlone(r rune) bool {
	return r >= 0x2E80 && (unicode.Is(unicode.Han, r) || unicode.Is(unicode.Hiragana, r) || unicode.Is(unicode.Katakana, r))
}

// cutRunes cuts s to at most n bytes without splitting a rune.
func cutRunes(s string, n int) string {
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
