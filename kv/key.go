package kv

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Keys are tuples of components encoded so that byte order equals tuple order:
// a string is tagged, has its NUL bytes escaped and ends with a terminator, so
// no component is ever a prefix of a different one; a uint64 is tagged and
// big-endian. Matrix identifiers and state keys may hold any character, so a
// plain separator would not be safe.
const (
	tagString byte = 0x02
	tagUint   byte = 0x03
)

// Key encodes a table name and components (string, uint64, int or []byte) into
// a key. The encoding of a leading run of components is a prefix of the whole
// key, so Key(table, a) is the prefix of every Key(table, a, ...).
func Key(table string, parts ...any) []byte {
	b := make([]byte, 0, 32)
	b = appendString(b, table)
	for _, p := range parts {
		switch v := p.(type) {
		case string:
			b = appendString(b, v)
		case []byte:
			b = appendString(b, string(v))
		case uint64:
			b = appendUint(b, v)
		case int:
			b = appendUint(b, uint64(v))
		case int64:
			b = appendUint(b, uint64(v))
		default:
			panic(fmt.Sprintf("kv.Key: unsupported component type %T", p))
		}
	}
	return b
}

// AppendString appends s to b as one more string component of a key, as
// Key encodes it: Key(t, a, s) equals AppendString(Key(t, a), s). For
// callers writing many keys that share components, which Key would box and
// allocate per key.
func AppendString(b []byte, s string) []byte { return appendString(b, s) }

// AppendUint appends v to b as one more uint64 component of a key, as Key
// encodes it (see AppendString).
func AppendUint(b []byte, v uint64) []byte { return appendUint(b, v) }

func appendString(b []byte, s string) []byte {
	b = append(b, tagString)
	for i := 0; i < len(s); i++ {
		if s[i] == 0 {
			b = append(b, 0, 0xFF)
		} else {
			b = append(b, s[i])
		}
	}
	return append(b, 0, 0x01)
}

func appendUint(b []byte, v uint64) []byte {
	b = append(b, tagUint)
	return binary.BigEndian.AppendUint64(b, v)
}

// errBadKey reports a key that was not made by Key.
var errBadKey = errors.New("kv: malformed key")

// DecodeKey splits a key made by Key into its table and components; strings
// come back as string, numbers as uint64.
func DecodeKey(key []byte) (table string, parts []any, err error) {
	first := true
	for len(key) > 0 {
		var v any
		switch key[0] {
		case tagString:
			var s []byte
			i := 1
			for {
				if i >= len(key) {
					return "", nil, errBadKey
				}
				if key[i] != 0 {
					s = append(s, key[i])
					i++
					continue
				}
				if i+1 >= len(key) {
					return "", nil, errBadKey
				}
				if key[i+1] == 0x01 {
					i += 2
					break
				}
				if key[i+1] != 0xFF {
					return "", nil, errBadKey
				}
				s = append(s, 0)
				i += 2
			}
			v, key = string(s), key[i:]
		case tagUint:
			if len(key) < 9 {
				return "", nil, errBadKey
			}
			v, key = binary.BigEndian.Uint64(key[1:9]), key[9:]
		default:
			return "", nil, errBadKey
		}
		if first {
			s, ok := v.(string)
			if !ok {
				return "", nil, errBadKey
			}
			table, first = s, false
			continue
		}
		parts = append(parts, v)
	}
	if first {
		return "", nil, errBadKey
	}
	return table, parts, nil
}

// LastString returns the final component of key as a string; it is the
// common case when iterating an index whose last component is an ID.
func LastString(key []byte) (string, error) {
	_, parts, err := DecodeKey(key)
	if err != nil {
		return "", err
	}
	if len(parts) == 0 {
		return "", errBadKey
	}
	s, ok := parts[len(parts)-1].(string)
	if !ok {
		return "", errBadKey
	}
	return s, nil
}

// LastUint returns the final component of key as a number.
func LastUint(key []byte) (uint64, error) {
	_, parts, err := DecodeKey(key)
	if err != nil {
		return 0, err
	}
	if len(parts) == 0 {
		return 0, errBadKey
	}
	n, ok := parts[len(parts)-1].(uint64)
	if !ok {
		return 0, errBadKey
	}
	return n, nil
}
