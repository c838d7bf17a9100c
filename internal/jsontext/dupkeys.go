package jsontext

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// DuplicateKeyError is an object with a key twice.
type DuplicateKeyError struct{ Key string }

func (e *DuplicateKeyError) Error() string {
	return fmt.Sprintf("duplicate key %q in a JSON object", e.Key)
}

// DuplicateKey reports an object, at any depth of raw, that has the same
// key twice (a *DuplicateKeyError). JSON leaves such an object's meaning
// open: Go keeps the last value, other parsers the first, and canonical
// JSON cannot represent it, so an event sent that way would be stored and
// signed in a form other servers read differently. Keys are compared after
// unescaping: "a" and "\u0061" are the same key.
//
// raw must already be valid JSON (callers check that first), so this is a
// plain byte scan, not a parse: it runs on every client body and every PDU.
func DuplicateKey(raw []byte) error {
	// One frame per open object or array; keys is nil until an object has
	// a key and stays nil for arrays.
	type frame struct {
		keys      map[string]struct{}
		object    bool
		expectKey bool
	}
	var stack []frame
	for i := 0; i < len(raw); i++ {
		switch c := raw[i]; c {
		case '{':
			stack = append(stack, frame{object: true, expectKey: true})
		case '[':
			stack = append(stack, frame{})
		case '}', ']':
			stack = stack[:len(stack)-1]
		case ',':
			if n := len(stack); n > 0 && stack[n-1].object {
				stack[n-1].expectKey = true
			}
		case '"':
			end := stringEnd(raw, i)
			n := len(stack)
			if n == 0 || !stack[n-1].object || !stack[n-1].expectKey {
				i = end
				continue // a value
			}
			key := raw[i : end+1]
			var k string
			if bytes.IndexByte(key, '\\') < 0 {
				k = string(key[1 : len(key)-1])
			} else if err := json.Unmarshal(key, &k); err != nil {
				return fmt.Errorf("not valid JSON: %w", err)
			}
			top := &stack[n-1]
			if _, dup := top.keys[k]; dup {
				return &DuplicateKeyError{Key: k}
			}
			if top.keys == nil {
				top.keys = map[string]struct{}{}
			}
			top.keys[k] = struct{}{}
			top.expectKey = false
			i = end
		}
	}
	return nil
}

// stringEnd returns the index of the quote closing the JSON string that
// opens at raw[start], which must be valid JSON. A quote ends the string
// unless an odd number of backslashes precede it.
func stringEnd(raw []byte, start int) int {
	for i := start + 1; i < len(raw); {
		j := bytes.IndexByte(raw[i:], '"')
		if j < 0 {
			break
		}
		q := i + j
		backslashes := 0
		for k := q - 1; k > start && raw[k] == '\\'; k-- {
			backslashes++
		}
		if backslashes%2 == 0 {
			return q
		}
		i = q + 1
	}
	return len(raw) - 1
}
