package kv_test

import (
	"bytes"
	"math"
	"slices"
	"testing"

	"github.com/edgenode/edgenode/kv"
)

func TestKeyRoundTrip(t *testing.T) {
	tests := []struct {
		name  string
		table string
		parts []any
		want  []any // nil: same as parts
	}{
		{"table only", "t", nil, nil},
		{"empty table", "", nil, nil},
		{"empty strings", "", []any{"", ""}, nil},
		{"NUL bytes", "t\x00", []any{"\x00", "a\x00b", "\x00\x00\x01\xff", "\x00\x01"}, nil},
		{"0x01 and 0xFF bytes", "\x01", []any{"\xff", "\x01\x00", "\xff\x00\xff"}, nil},
		{"unicode", "表", []any{"ключ", "🙂", "é\u0000ü"}, nil},
		{"uint64 edges", "t", []any{uint64(0), uint64(1), uint64(math.MaxUint64)}, nil},
		{"mixed", "t", []any{"a", uint64(7), "", uint64(0), "z"}, nil},
		{"int, int64 and []byte", "t", []any{42, int64(7), []byte("x\x00")}, []any{uint64(42), uint64(7), "x\x00"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := tt.want
			if want == nil {
				want = tt.parts
			}
			table, parts, err := kv.DecodeKey(kv.Key(tt.table, tt.parts...))
			if err != nil {
				t.Fatalf("DecodeKey: %v", err)
			}
			if table != tt.table || !slices.Equal(parts, want) {
				t.Fatalf("DecodeKey = %q %#v, want %q %#v", table, parts, tt.table, want)
			}
		})
	}
}

func TestKeyOrder(t *testing.T) {
	tests := []struct {
		name   string
		lo, hi []byte
	}{
		{"empty < NUL", kv.Key("t", ""), kv.Key("t", "\x00")},
		{"NUL < NUL NUL", kv.Key("t", "\x00"), kv.Key("t", "\x00\x00")},
		{"NUL NUL < 0x01", kv.Key("t", "\x00\x00"), kv.Key("t", "\x01")},
		{"a < a NUL", kv.Key("t", "a"), kv.Key("t", "a\x00")},
		{"a NUL < ab", kv.Key("t", "a\x00"), kv.Key("t", "ab")},
		{"a NUL < a 0x01", kv.Key("t", "a\x00"), kv.Key("t", "a\x01")},
		{"ab < a 0xFF", kv.Key("t", "ab"), kv.Key("t", "a\xff")},
		{"a 0xFF < b", kv.Key("t", "a\xff"), kv.Key("t", "b")},
		{"(a, z) < (a NUL)", kv.Key("t", "a", "z"), kv.Key("t", "a\x00")},
		{"(a, max) < (ab)", kv.Key("t", "a", uint64(math.MaxUint64)), kv.Key("t", "ab")},
		{"table a < table a NUL", kv.Key("a", "zzz"), kv.Key("a\x00")},
		{"table a < table ab", kv.Key("a", uint64(math.MaxUint64)), kv.Key("ab")},
		{"unicode code point order", kv.Key("t", "z"), kv.Key("t", "é")},
		{"0 < 1", kv.Key("t", uint64(0)), kv.Key("t", uint64(1))},
		{"1 < 256", kv.Key("t", uint64(1)), kv.Key("t", uint64(256))},
		{"255 < 256", kv.Key("t", uint64(255)), kv.Key("t", uint64(256))},
		{"2^32-1 < 2^32", kv.Key("t", uint64(1<<32-1)), kv.Key("t", uint64(1<<32))},
		{"max-1 < max", kv.Key("t", uint64(math.MaxUint64-1)), kv.Key("t", uint64(math.MaxUint64))},
		{"(1, max) < (2, 0)", kv.Key("t", uint64(1), uint64(math.MaxUint64)), kv.Key("t", uint64(2), uint64(0))},
		{"shorter tuple first", kv.Key("t", uint64(1)), kv.Key("t", uint64(1), uint64(0))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if bytes.Compare(tt.lo, tt.hi) >= 0 {
				t.Fatalf("%x >= %x", tt.lo, tt.hi)
			}
		})
	}
}

func TestKeyPrefix(t *testing.T) {
	tests := []struct {
		name   string
		prefix []byte
		key    []byte
		want   bool
	}{
		{"table of key", kv.Key("t"), kv.Key("t", "a"), true},
		{"a of (a, b)", kv.Key("t", "a"), kv.Key("t", "a", "b"), true},
		{"a of (a, 7)", kv.Key("t", "a"), kv.Key("t", "a", uint64(7)), true},
		{"(a, 7) of (a, 7, x)", kv.Key("t", "a", uint64(7)), kv.Key("t", "a", uint64(7), "x"), true},
		{"empty of (empty, x)", kv.Key("t", ""), kv.Key("t", "", "x"), true},
		{"a not of ab", kv.Key("t", "a"), kv.Key("t", "ab"), false},
		{"a not of a NUL", kv.Key("t", "a"), kv.Key("t", "a\x00"), false},
		{"empty not of NUL", kv.Key("t", ""), kv.Key("t", "\x00"), false},
		{"table a not of table ab", kv.Key("a"), kv.Key("ab", "x"), false},
		{"room1 not of room10", kv.Key("r", "room1"), kv.Key("r", "room10", uint64(1)), false},
		{"1 not of 256", kv.Key("t", uint64(1)), kv.Key("t", uint64(256)), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := bytes.HasPrefix(tt.key, tt.prefix); got != tt.want {
				t.Fatalf("HasPrefix(%x, %x) = %v, want %v", tt.key, tt.prefix, got, tt.want)
			}
		})
	}
}

func TestDecodeKeyMalformed(t *testing.T) {
	cat := func(bs ...[]byte) []byte { return bytes.Join(bs, nil) }
	tests := []struct {
		name string
		key  []byte
	}{
		{"nil", nil},
		{"empty", []byte{}},
		{"unknown tag", []byte{0x01, 'a', 0, 1}},
		{"tag only", []byte{0x02}},
		{"unterminated string", []byte{0x02, 'a'}},
		{"lone NUL at end", []byte{0x02, 'a', 0}},
		{"bad escape", []byte{0x02, 'a', 0, 0x02}},
		{"escaped NUL then end", []byte{0x02, 0, 0xFF}},
		{"uint table", kv.Key("t", uint64(1))[len(kv.Key("t")):]},
		{"short uint", cat(kv.Key("t"), []byte{0x03, 1, 2, 3})},
		{"uint tag only", cat(kv.Key("t"), []byte{0x03})},
		{"trailing garbage", cat(kv.Key("t", "a"), []byte{0xFF})},
		{"truncated component", kv.Key("t", "abc")[:len(kv.Key("t", "abc"))-1]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if table, parts, err := kv.DecodeKey(tt.key); err == nil {
				t.Fatalf("DecodeKey(%x) = %q %#v, want error", tt.key, table, parts)
			}
			if _, err := kv.LastString(tt.key); err == nil {
				t.Errorf("LastString(%x): want error", tt.key)
			}
			if _, err := kv.LastUint(tt.key); err == nil {
				t.Errorf("LastUint(%x): want error", tt.key)
			}
		})
	}
}

func TestLastComponent(t *testing.T) {
	tests := []struct {
		name  string
		key   []byte
		str   string
		strOK bool
		num   uint64
		numOK bool
	}{
		{"string last", kv.Key("t", uint64(3), "id\x00"), "id\x00", true, 0, false},
		{"uint last", kv.Key("t", "x", uint64(math.MaxUint64)), "", false, math.MaxUint64, true},
		{"table only", kv.Key("t"), "", false, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := kv.LastString(tt.key)
			if (err == nil) != tt.strOK || s != tt.str {
				t.Errorf("LastString = %q, %v; want %q ok=%v", s, err, tt.str, tt.strOK)
			}
			n, err := kv.LastUint(tt.key)
			if (err == nil) != tt.numOK || n != tt.num {
				t.Errorf("LastUint = %d, %v; want %d ok=%v", n, err, tt.num, tt.numOK)
			}
		})
	}
}

func FuzzDecodeKey(f *testing.F) {
	f.Add([]byte{})
	f.Add(kv.Key("t"))
	f.Add(kv.Key("t\x00", "a\x00b", uint64(math.MaxUint64), ""))
	f.Add(kv.Key("表", uint64(0), "🙂"))
	f.Add([]byte{0x02, 'a', 0, 0xFF, 0, 0x02})
	f.Fuzz(func(t *testing.T, b []byte) {
		table, parts, err := kv.DecodeKey(b)
		if err != nil {
			return
		}
		// The encoding is canonical: whatever decodes re-encodes to the same bytes.
		if re := kv.Key(table, parts...); !bytes.Equal(re, b) {
			t.Fatalf("Key(DecodeKey(%x)) = %x", b, re)
		}
	})
}

// TestAppendComponents: keys built with AppendString/AppendUint are the
// keys Key builds, escapes included.
func TestAppendComponents(t *testing.T) {
	for _, tc := range []struct {
		s string
		v uint64
	}{{"word", 7}, {"", 0}, {"a\x00b\x00", math.MaxUint64}, {"\xff\x01", 1 << 40}} {
		got := kv.AppendUint(kv.AppendString(kv.Key("tbl", "x"), tc.s), tc.v)
		if want := kv.Key("tbl", "x", tc.s, tc.v); !bytes.Equal(got, want) {
			t.Errorf("%q, %d: got %x, want %x", tc.s, tc.v, got, want)
		}
	}
}
