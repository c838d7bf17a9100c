package jsontext

import (
	"errors"
	"strings"
	"testing"
)

func TestDuplicateKey(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, body string
		dup        bool
	}{
		{"empty object", `{}`, false},
		{"distinct keys", `{"a":1,"b":{"a":2},"c":[{"a":3},{"a":4}]}`, false},
		{"same key in sibling objects", `[{"a":1},{"a":1}]`, false},
		{"string values equal to keys", `{"a":"a","b":"a"}`, false},
		{"escaped quotes and backslashes", `{"a\"":1,"a\\":2,"a":3,"\\":4,"\"":5}`, false},
		{"a value that looks like keys", `{"a":"\",\"a\":1,\"","b":"\\","c":1}`, false},
		{"top level", `{"a":1,"a":2}`, true},
		{"key ending in a backslash", `{"x\\":1,"x\\":2}`, true},
		{"nested", `{"x":{"y":{"a":1,"a":1}}}`, true},
		{"inside an array", `{"x":[1,{"a":1,"b":2,"a":3}]}`, true},
		{"after a nested object", `{"a":{"b":1},"a":2}`, true},
		{"escaped spelling", `{"a":1,"\u0061":2}`, true},
		{"after an array value", `{"a":[1,2],"b":3,"a":4}`, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := DuplicateKey([]byte(tc.body))
			var de *DuplicateKeyError
			if tc.dup {
				if !errors.As(err, &de) {
					t.Fatalf("%s: got %v, want a DuplicateKeyError", tc.body, err)
				}
			} else if err != nil {
				t.Fatalf("%s: %v", tc.body, err)
			}
		})
	}
}

// BenchmarkDuplicateKey measures the check on a typical message body
// and on one near the event size limit (64 KiB), the most a /send body
// carries.
func BenchmarkDuplicateKey(b *testing.B) {
	for _, bc := range []struct{ name, text string }{
		{"message", "hello there, how are you?"},
		{"64KiB", strings.Repeat("x", 60000)},
	} {
		body := []byte(`{"msgtype":"m.text","body":"` + bc.text + `","format":"org.matrix.custom.html","m.mentions":{"user_ids":["@a:b"]}}`)
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if err := DuplicateKey(body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
