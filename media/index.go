package media

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/edgenode/edgenode/kv"
)

// The index's tables, in the node's database.
const (
	tLocal       = "media.local"        // id -> Record
	tPending     = "media.pending"      // id -> pendingRecord
	tPendingUser = "media.pending.user" // user, id -> nothing
	tUsage       = "media.usage"        // user -> uint64 bytes uploaded
	tCounter     = "media.counter"      // name -> uint64 (counter* below)
	tRef         = "media.ref"          // hash -> uint64 references
	tRemote      = "media.remote"       // origin, id -> Record
	tLRU         = "media.lru"          // last access ms, origin, id -> nothing
	tThumb       = "media.thumb"        // origin, id, width, height, method -> Record
)

// Counters kept beside the index, changed in the transactions that change
// what they count.
const (
	counterLocalBytes   = "local_bytes"
	counterLocalFiles   = "local_files"
	counterRemoteBytes  = "remote_bytes"
	counterRemoteFiles  = "remote_files"
	counterThumbBytes   = "thumb_bytes"
	counterThumbFiles   = "thumb_files"
	counterContentBytes = "content_bytes" // distinct files on disk
	counterContentFiles = "content_files"
)

// Record is one media item's index entry.
type Record struct {
	// Origin and ID name the item (mxc://Origin/ID); not stored.
	Origin string `json:"-"`
	ID     string `json:"-"`
	// Hash is the content's lowercase hex SHA-256, which names its file.
	Hash        string `json:"hash"`
	ContentType string `json:"content_type"`
	Size        int64  `json:"size"`
	// Uploader is the local user who uploaded it (local media only).
	Uploader string `json:"uploader,omitempty"`
	// FileName is the name given at upload (or by the origin), if any.
	FileName  string `json:"file_name,omitempty"`
	CreatedMS int64  `json:"created_ms"`
	// Restricted marks media uploaded while the unauthenticated download
	// endpoints were frozen: they answer 404 for it.
	Restricted bool `json:"restricted,omitempty"`
	// LastAccessMS is when a cached remote item was last read (its LRU
	// position).
	LastAccessMS int64 `json:"last_access_ms,omitempty"`
}

func getUint(tx *kv.Txn, key []byte) (uint64, error) {
	b, err := tx.Get(key)
	if errors.Is(err, kv.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if len(b) != 8 {
		return 0, fmt.Errorf("media: counter %q: %d bytes", key, len(b))
	}
	return binary.BigEndian.Uint64(b), nil
}

// addUint adds delta to the counter at key (deleting it at zero) and
// returns the new value.
func addUint(tx *kv.Txn, key []byte, delta int64) (uint64, error) {
	v, err := getUint(tx, key)
	if err != nil {
		return 0, err
	}
	nv := int64(v) + delta
	if nv < 0 {
		return 0, fmt.Errorf("media: counter %q would go below zero", key)
	}
	if nv == 0 {
		return 0, tx.Delete(key)
	}
	return uint64(nv), tx.Set(key, binary.BigEndian.AppendUint64(nil, uint64(nv)))
}

func counter(tx *kv.Txn, name string) (uint64, error) { return getUint(tx, kv.Key(tCounter, name)) }

func addCounter(tx *kv.Txn, name string, delta int64) error {
	_, err := addUint(tx, kv.Key(tCounter, name), delta)
	return err
}

// addRef adds a reference to hash (a file of size bytes) and reports
// whether it is the first.
func addRef(tx *kv.Txn, hash string, size int64) error {
	n, err := addUint(tx, kv.Key(tRef, hash), 1)
	if err != nil {
		return err
	}
	if n == 1 {
		if err := addCounter(tx, counterContentFiles, 1); err != nil {
			return err
		}
		return addCounter(tx, counterContentBytes, size)
	}
	return nil
}

// dropRef removes a reference to hash and reports whether it was the last
// (the caller removes the file after the commit).
func dropRef(tx *kv.Txn, hash string, size int64) (last bool, err error) {
	n, err := addUint(tx, kv.Key(tRef, hash), -1)
	if err != nil {
		return false, err
	}
	if n == 0 {
		if err := addCounter(tx, counterContentFiles, -1); err != nil {
			return false, err
		}
		return true, addCounter(tx, counterContentBytes, -size)
	}
	return false, nil
}

func hasRef(tx *kv.Txn, hash string) (bool, error) { return tx.Has(kv.Key(tRef, hash)) }

// getRecord reads the record at key into a Record named origin/id.
func getRecord(tx *kv.Txn, key []byte, origin, id string) (Record, error) {
	var r Record
	if err := tx.GetJSON(key, &r); err != nil {
		if errors.Is(err, kv.ErrNotFound) {
			return Record{}, ErrNotFound
		}
		return Record{}, err
	}
	r.Origin, r.ID = origin, id
	return r, nil
}
