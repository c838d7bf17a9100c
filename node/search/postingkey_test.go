package search

import (
	"bytes"
	"context"
	"testing"

	"github.com/edgenode/edgenode/kv"
)

// TestWritePostingsKeys: the postings writePostings writes (keys built in
// one buffer) are at postingKey, the key the queries scan and redactions
// delete, with their counts, for tokens of any length and escapes.
func TestWritePostingsKeys(t *testing.T) {
	db, err := kv.Open(context.Background(), kv.Options{Dir: t.TempDir(), NoSyncWrites: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	const roomID, pos = "!room\x00x:example.org", uint64(1<<33 + 5)
	tokens := []string{"a", "ordinary", string(bytes.Repeat([]byte{0}, MaxTokenBytes)), "é"}
	counts := map[string]int{"a": 2, "ordinary": 1, tokens[2]: 300, "é": 1}
	if err := db.Update(func(tx *kv.Txn) error {
		return writePostings(tx, roomID, pos, FieldBody, tokens, counts, "state1")
	}); err != nil {
		t.Fatal(err)
	}
	if err := db.View(func(tx *kv.Txn) error {
		n := 0
		if err := tx.Each(kv.Scan{Prefix: kv.Key(TablePostings)}, func(k, v []byte) (bool, error) {
			n++
			return true, nil
		}); err != nil {
			return err
		}
		if n != len(tokens) {
			t.Errorf("%d postings, want %d", n, len(tokens))
		}
		for _, tok := range tokens {
			v, err := tx.Get(postingKey(tok, roomID, pos))
			if err != nil {
				t.Errorf("token %q: %v", tok, err)
				continue
			}
			p, err := decodePosting(v)
			if err != nil {
				return err
			}
			if want := (posting{field: FieldBody, count: min(counts[tok], 255), stateBefore: "state1"}); p != want {
				t.Errorf("token %q: posting %+v, want %+v", tok, p, want)
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}
