package kv

// Count is how many keys start with prefix. It reads keys only; callers use
// it on tables whose size they bound or in tests and reports.
func (db *DB) Count(prefix []byte) (int, error) {
	n := 0
	err := db.View(func(tx *Txn) error {
		return tx.Each(Scan{Prefix: prefix, KeysOnly: true}, func(_, _ []byte) (bool, error) {
			n++
			return true, nil
		})
	})
	return n, err
}
