package jsontext

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
)

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want error
	}{
		{"ascii", `{"body":"hello"}`, nil},
		{"non-ASCII text", `{"body":"grüße, 日本語 😀"}`, nil},
		{"surrogate pair", `{"body":"\ud83d\ude00"}`, nil},
		{"surrogate pair upper-case hex", `{"body":"\uD83D\uDE00"}`, nil},
		{"other escapes", `{"body":"a\\u0041\"\n\u00e9"}`, nil},
		{"escaped backslash then u", `{"body":"\\ud800"}`, nil},
		{"invalid bytes", "{\"body\":\"BAD-\xff\xfe\"}", ErrInvalidUTF8},
		{"truncated sequence", "{\"body\":\"\xe2\x82\"}", ErrInvalidUTF8},
		{"encoded surrogate bytes", "{\"body\":\"\xed\xa0\x80\"}", ErrInvalidUTF8},
		{"lone high", `{"body":"\ud800"}`, ErrLoneSurrogate},
		{"lone high at end", `"\ud800`, ErrLoneSurrogate},
		{"lone low", `{"body":"\udc00"}`, ErrLoneSurrogate},
		{"high then non-surrogate", `{"body":"\ud800\u0041"}`, ErrLoneSurrogate},
		{"high then high", `{"body":"\ud800\ud800"}`, ErrLoneSurrogate},
		{"reversed pair", `{"body":"\ude00\ud83d"}`, ErrLoneSurrogate},
		{"lone in a key", `{"\ud800":1}`, ErrLoneSurrogate},
		{"not JSON is not this check's", `{"body":"\u12"}`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := Check([]byte(tc.in)); !errors.Is(err, tc.want) {
				t.Fatalf("Check(%q) = %v, want %v", tc.in, err, tc.want)
			}
		})
	}
}

func FuzzCheck(f *testing.F) {
	f.Add([]byte(`{"body":"\ud83d\ude00"}`))
	f.Add([]byte(`{"body":"\ud800"}`))
	f.Add([]byte("{\"\xff\":\"\\udbff\"}"))
	f.Fuzz(func(t *testing.T, b []byte) {
		err := Check(b) // must not panic
		if !json.Valid(b) {
			return
		}
		s := Sanitize(b)
		if (err == nil) != bytes.Equal(s, b) {
			t.Fatalf("Check = %v but Sanitize changed %q to %q", err, b, s)
		}
		if Check(s) != nil || !json.Valid(s) {
			t.Fatalf("Sanitize(%q) = %q: Check %v, JSON %v", b, s, Check(s), json.Valid(s))
		}
	})
}

// BenchmarkCheck64KiB: the check on a 64 KiB event of mixed text with
// escapes, the largest a client may send.
func BenchmarkCheck64KiB(b *testing.B) {
	unit := `{"body":"grüße \"quoted\" \ud83d\ude00 plain ascii text\n"},`
	var buf []byte
	for len(buf) < 64<<10 {
		buf = append(buf, unit...)
	}
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		if err := Check(buf); err != nil {
			b.Fatal(err)
		}
	}
}

func TestSanitize(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`{"body":"fine \ud83d\ude00"}`, `{"body":"fine \ud83d\ude00"}`},
		{"{\"body\":\"BAD-\xff\xfe\"}", "{\"body\":\"BAD-\uFFFD\"}"},
		{`{"body":"lone-\ud800"}`, `{"body":"lone-\ufffd"}`},
		{`{"body":"low-\udc00 and \ud83d\ude00"}`, `{"body":"low-\ufffd and \ud83d\ude00"}`},
		{`{"body":"\ud800\ud83d\ude00"}`, `{"body":"\ufffd\ud83d\ude00"}`},
		{`{"body":"\\ud800 \ud800"}`, `{"body":"\\ud800 \ufffd"}`},
		{"{\"\xff\":\"\\udbff\"}", "{\"\uFFFD\":\"\\ufffd\"}"},
	} {
		got := Sanitize([]byte(tc.in))
		if string(got) != tc.want {
			t.Errorf("Sanitize(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if err := Check(got); err != nil {
			t.Errorf("Sanitize(%q) = %q, which Check refuses: %v", tc.in, got, err)
		}
	}
}
