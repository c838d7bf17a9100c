// Package jsontext checks that JSON bytes are text every Matrix server reads
// the same way: valid UTF-8, with no escaped lone UTF-16 surrogate (Check),
// and no object with a key twice (DuplicateKey); IsObject tells a JSON object
// from the other values a struct decodes without error.
package jsontext

import (
	"bytes"
	"errors"
	"unicode/utf8"
)

// Errors Check returns.
var (
	// ErrInvalidUTF8 is a body that is not valid UTF-8.
	ErrInvalidUTF8 = errors.New("not valid UTF-8")
	// ErrLoneSurrogate is a \uXXXX escape of a UTF-16 surrogate that is
	// not part of a high-low pair, such as "\ud800".
	ErrLoneSurrogate = errors.New(`escapes a lone UTF-16 surrogate (such as "\ud800")`)
)

// Check reports whether b is valid UTF-8 without an escaped lone surrogate.
// Both are valid to Go's encoding/json, which turns them into U+FFFD on
// decoding, so what a node stored and signed would not be what was sent;
// other servers refuse invalid UTF-8 outright (gomatrixserverlib does, for
// a whole transaction), and strict parsers refuse lone surrogates. It does
// not check that b is JSON: a backslash outside a string is the JSON
// check's to refuse.
func Check(b []byte) error {
	if !utf8.Valid(b) {
		return ErrInvalidUTF8
	}
	for {
		i := bytes.IndexByte(b, '\\')
		if i < 0 || i+1 >= len(b) {
			return nil
		}
		if b[i+1] != 'u' {
			b = b[i+2:] // an escaped character, maybe a backslash: skip both
			continue
		}
		r, ok := hex4(b[i+2:])
		if !ok {
			return nil // not JSON: the caller's JSON check refuses it
		}
		b = b[i+6:]
		switch {
		case r >= 0xdc00 && r <= 0xdfff:
			return ErrLoneSurrogate // a low surrogate with no high one before it
		case r >= 0xd800 && r <= 0xdbff:
			if len(b) < 6 || b[0] != '\\' || b[1] != 'u' {
				return ErrLoneSurrogate
			}
			if lo, ok := hex4(b[2:]); !ok || lo < 0xdc00 || lo > 0xdfff {
				return ErrLoneSurrogate
			}
			b = b[6:]
		}
	}
}

// hex4 decodes the four hex digits at the start of b.
func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}

// Sanitize returns b if Check accepts it, else a copy in which each run
// of bytes that are not UTF-8 is U+FFFD and each lone surrogate escape is
// "\ufffd": what encoding/json would decode either to, as text every
// parser reads. b must be valid JSON apart from that (as an event stored
// before its edge refused such bytes is), and the result stays valid JSON:
// outside strings JSON has neither.
func Sanitize(b []byte) []byte {
	if Check(b) == nil {
		return b
	}
	out := bytes.ToValidUTF8(b, []byte("\uFFFD"))
	if out == nil {
		out = []byte{}
	}
	for i := 0; i+1 < len(out); i++ {
		if out[i] != '\\' {
			continue
		}
		if out[i+1] != 'u' {
			i++ // an escaped character, maybe a backslash
			continue
		}
		r, ok := hex4(out[i+2:])
		if !ok {
			continue
		}
		if r >= 0xd800 && r <= 0xdbff && i+11 < len(out) && out[i+6] == '\\' && out[i+7] == 'u' {
			if lo, ok := hex4(out[i+8:]); ok && lo >= 0xdc00 && lo <= 0xdfff {
				i += 11 // a pair: keep it
				continue
			}
		}
		if r >= 0xd800 && r <= 0xdfff {
			copy(out[i+2:i+6], "fffd")
		}
		i += 5
	}
	return out
}
