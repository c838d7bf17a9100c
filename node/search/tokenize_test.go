package search

import (
	"slices"
	"strings"
	"testing"
)

func TestTokens(t *testing.T) {
	long := strings.Repeat("é", 40) // 80 bytes
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"Hello, World!", []string{"hello", "world"}},
		{"hello hello HELLO", []string{"hello"}},
		{"ÉCOLE école", []string{"école"}},
		{"straße STRASSE", []string{"straße", "strasse"}},
		{"don't-stop me_now", []string{"don", "t", "stop", "me", "now"}},
		{"v1.2.3 42", []string{"v1", "2", "3", "42"}},
		{"東京タワー です", []string{"東", "京", "タ", "ワ", "ー", "で", "す"}},
		{"Привет, МИР", []string{"привет", "мир"}},
		{"🎉🎉 party", []string{"party"}},
		{"", nil},
		{long, []string{strings.Repeat("é", 32)}},
	} {
		got, _ := Tokens(tc.in, MaxTokensPerEvent)
		if !slices.Equal(got, tc.want) {
			t.Errorf("Tokens(%q) = %q, want %q", tc.in, got, tc.want)
		}
		for _, tok := range got {
			if len(tok) > MaxTokenBytes {
				t.Errorf("token %q over %d bytes", tok, MaxTokenBytes)
			}
		}
	}
	_, counts := Tokens("a b a c a b", 10)
	if counts["a"] != 3 || counts["b"] != 2 || counts["c"] != 1 {
		t.Errorf("counts %v", counts)
	}
	// The cap keeps the first distinct tokens and still counts them.
	got, counts := Tokens("a b c d a e", 3)
	if !slices.Equal(got, []string{"a", "b", "c"}) || counts["a"] != 2 || counts["d"] != 0 {
		t.Errorf("capped: %q %v", got, counts)
	}
}

func TestPostingEncoding(t *testing.T) {
	for _, p := range []posting{
		{field: FieldBody, count: 1, stateBefore: "abc"},
		{field: FieldTopic, count: 255, stateBefore: ""},
		{field: FieldName, count: 3, stateBefore: strings.Repeat("s", 300)},
	} {
		got, err := decodePosting(encodePosting(p))
		if err != nil || got != p {
			t.Errorf("round trip of %+v: %+v, %v", p, got, err)
		}
	}
	if got, _ := decodePosting(encodePosting(posting{field: FieldBody, count: 1000})); got.count != 255 {
		t.Errorf("count %d, want capped at 255", got.count)
	}
	for _, b := range [][]byte{nil, {1}, {1, 2}, {1, 2, 0x80}, {1, 2, 9, 'a'}, {1, 2, 1, 'a', 'b'}} {
		if _, err := decodePosting(b); err == nil {
			t.Errorf("decodePosting(%x) succeeded", b)
		}
	}
}

// BenchmarkIndexText is the indexer's work per message outside Badger:
// tokens, keys and values.
func BenchmarkIndexText(b *testing.B) {
	text := "a message of ordinary length for a chat"
	b.ReportAllocs()
	for b.Loop() {
		tokens, counts := Tokens(text, MaxTokensPerEvent)
		for _, tok := range tokens {
			_ = postingKey(tok, "!room:example.org", 123456)
			_ = encodePosting(posting{field: FieldBody, count: counts[tok], stateBefore: "abcdefabcdefabcdef"})
		}
	}
}
