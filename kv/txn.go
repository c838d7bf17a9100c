package kv

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"
)

// Txn is a transaction on the database, read-only inside View.
type Txn struct {
	t *badger.Txn
}

// Get returns a copy of the value stored at key, or ErrNotFound.
func (tx *Txn) Get(key []byte) ([]byte, error) {
	item, err := tx.t.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("kv: get: %w", err)
	}
	return valueOf(item)
}

// ErrCorrupt reports a stored value whose bytes failed their checksum.
var ErrCorrupt = errors.New("kv: stored value is corrupt")

// valueOf copies item's value. Badger v4.9.6 logs a value-log read that
// fails (a checksum mismatch among them) and then returns no value and no
// error (Item.yieldItemValue: "Don't return error if we cannot read the
// value"). A value in the value log is never empty (shorter ones are
// stored inline), so an empty copy of an item whose stored size is not
// zero is that failure, and is returned as ErrCorrupt.
func valueOf(item *badger.Item) ([]byte, error) {
	v, err := item.ValueCopy(nil)
	if err != nil {
		return nil, fmt.Errorf("kv: read value: %w", err)
	}
	if len(v) == 0 && item.ValueSize() > 0 {
		return nil, fmt.Errorf("%w: key %q", ErrCorrupt, item.Key())
	}
	return v, nil
}

// Has reports whether key exists.
func (tx *Txn) Has(key []byte) (bool, error) {
	_, err := tx.t.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("kv: get: %w", err)
	}
	return true, nil
}

// GetJSON decodes the JSON value at key into v, or returns ErrNotFound.
func (tx *Txn) GetJSON(key []byte, v any) error {
	b, err := tx.Get(key)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("kv: decode %q: %w", key, err)
	}
	return nil
}

// Set writes value at key.
func (tx *Txn) Set(key, value []byte) error {
	if err := tx.t.Set(key, value); err != nil {
		return fmt.Errorf("kv: set: %w", err)
	}
	return nil
}

// SetJSON writes v, encoded as JSON, at key.
func (tx *Txn) SetJSON(key []byte, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("kv: encode: %w", err)
	}
	return tx.Set(key, b)
}

// Delete removes key; deleting a missing key is not an error.
func (tx *Txn) Delete(key []byte) error {
	if err := tx.t.Delete(key); err != nil {
		return fmt.Errorf("kv: delete: %w", err)
	}
	return nil
}

// Scan describes an iteration over the keys under Prefix.
type Scan struct {
	// Prefix limits the iteration to keys that start with it.
	Prefix []byte
	// From, when set, is where to start (inclusive): forwards, the first key >=
	// From; in reverse, the first key <= From.
	From []byte
	// Reverse iterates from the largest key down.
	Reverse bool
	// KeysOnly skips reading values (fn gets a nil value).
	KeysOnly bool
}

// Each calls fn for each key (and value) matched by s, in order, until fn
// returns false or an error. The slices passed to fn are valid only during the
// call.
func (tx *Txn) Each(s Scan, fn func(key, value []byte) (bool, error)) error {
	opts := badger.DefaultIteratorOptions
	opts.Prefix = s.Prefix
	opts.Reverse = s.Reverse
	// No prefetching: values are small and stored inline, and prefetching
	// reads ahead past the last key a caller wants. In reverse that walks
	// into the neighbouring table, where a key rewritten on every commit
	// (a room's head) can have thousands of versions to step over.
	opts.PrefetchValues = false
	it := tx.t.NewIterator(opts)
	defer it.Close()
	start := s.From
	if start == nil {
		start = s.Prefix
		if s.Reverse {
			// Seek in reverse lands on the largest key <= start; a prefix
			// followed by 0xFF bytes sorts after every key under it.
			start = append(bytes.Clone(s.Prefix), 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF)
		}
	}
	for it.Seek(start); it.ValidForPrefix(s.Prefix); it.Next() {
		item := it.Item()
		var val []byte
		if !s.KeysOnly {
			v, err := valueOf(item)
			if err != nil {
				return err
			}
			val = v
		}
		more, err := fn(item.Key(), val)
		if err != nil {
			return err
		}
		if !more {
			return nil
		}
	}
	return nil
}
