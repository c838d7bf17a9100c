package kv

import "slices"

// DeleteEach calls fn for each key (and value) matched by s, in order, like
// Each, and deletes the keys fn hands to del (the scanned key or any other,
// copied when handed over) once the scan is over: the scan sees the
// transaction as it was before the deletes, and fn may decide on the whole
// of what it reads. It returns how many keys it deleted.
func (tx *Txn) DeleteEach(s Scan, fn func(key, value []byte, del func(key []byte)) (bool, error)) (int, error) {
	var keys [][]byte
	del := func(k []byte) { keys = append(keys, slices.Clone(k)) }
	if err := tx.Each(s, func(k, v []byte) (bool, error) { return fn(k, v, del) }); err != nil {
		return 0, err
	}
	for _, k := range keys {
		if err := tx.Delete(k); err != nil {
			return 0, err
		}
	}
	return len(keys), nil
}

// DeleteFirst deletes the first limit keys matched by s (every one when
// limit <= 0) and returns how many it deleted.
func (tx *Txn) DeleteFirst(s Scan, limit int) (int, error) {
	s.KeysOnly = true
	n := 0
	return tx.DeleteEach(s, func(k, _ []byte, del func([]byte)) (bool, error) {
		del(k)
		n++
		return limit <= 0 || n < limit, nil
	})
}

// DeleteUpTo deletes, in order from s's start, the keys matched by s whose
// last part (a uint64, see LastUint) is at most upTo, at most limit of them
// (no bound when limit <= 0). It returns how many it deleted and whether it
// stopped at the limit with such keys perhaps left.
func (tx *Txn) DeleteUpTo(s Scan, upTo uint64, limit int) (deleted int, more bool, err error) {
	s.KeysOnly = true
	n := 0
	deleted, err = tx.DeleteEach(s, func(k, _ []byte, del func([]byte)) (bool, error) {
		pos, err := LastUint(k)
		if err != nil || pos > upTo {
			return false, err
		}
		del(k)
		n++
		more = limit > 0 && n == limit
		return !more, nil
	})
	return deleted, more, err
}
