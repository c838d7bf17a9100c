package keybackup

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"

	"github.com/edgenode/edgenode/kv"
	"github.com/edgenode/edgenode/node/core"
)

// KeyBackups is the node's key backup store. node.Node embeds it, so its
// methods are the node's.
type KeyBackups struct {
	db  *kv.DB
	log *slog.Logger
	// life ends when the node closes: purges run under it, not under the
	// request that started them, so a client hanging up does not leave
	// them half done.
	life context.Context
}

// Open returns the key backup store of the room core c and finishes the
// deletion of any version whose keys a previous run did not delete to the
// end.
func Open(ctx context.Context, c *core.Node) (*KeyBackups, error) {
	b := &KeyBackups{db: c.DB, log: c.Logger().With("component", "keybackup"), life: c.Life}
	if err := b.resumePurges(ctx); err != nil {
		return nil, fmt.Errorf("keybackup: %w", err)
	}
	return b, nil
}

// WrongVersionError is returned when keys are written to a backup version
// that is not the user's current one; Current is the current version. The
// HTTP edge answers it with 403 M_WRONG_ROOM_KEYS_VERSION.
type WrongVersionError struct {
	Current string
}

func (e *WrongVersionError) Error() string {
	return fmt.Sprintf("keybackup: %s is the current backup version", e.Current)
}

// userRecord is a user's backup bookkeeping: the last version number
// handed out, so that a number is never reused (keys of a deleted version
// may still be being purged under it).
type userRecord struct {
	Last uint64 `json:"last"`
}

// versionRecord is one backup version.
type versionRecord struct {
	Algorithm string `json:"alg"`
	AuthData  []byte `json:"auth"` // JSON object, as uploaded (compacted)
	Count     int    `json:"count"`
	// Bytes is the size of the keys' stored JSON (MaxBackupBytes).
	Bytes int64 `json:"bytes"`
	// Etag counts changes to the version's keys.
	Etag uint64 `json:"etag"`
}

// errNoBackup is the user having no backup at all.
var errNoBackup = fmt.Errorf("%w: no current backup version", core.ErrNotFound)

// unknownVersion is the error for a version that does not exist.
func unknownVersion(v string) error {
	return fmt.Errorf("%w: unknown backup version %q", core.ErrNotFound, v)
}

// parseVersion reads a version string; ok is false for a string no version
// of ours could have (versions are decimal numbers from 1, written without
// leading zeros).
func parseVersion(s string) (uint64, bool) {
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil || v == 0 || strconv.FormatUint(v, 10) != s {
		return 0, false
	}
	return v, true
}

func formatVersion(v uint64) string { return strconv.FormatUint(v, 10) }

// currentVersion returns the user's current version (the highest one
// stored), or 0 when there is none.
func currentVersion(tx *kv.Txn, userID string) (uint64, error) {
	var cur uint64
	err := tx.Each(kv.Scan{Prefix: versionPrefix(userID), Reverse: true, KeysOnly: true}, func(k, _ []byte) (bool, error) {
		v, err := kv.LastUint(k)
		cur = v
		return false, err
	})
	return cur, err
}

// getVersion reads one version's record; found is false when it does not
// exist.
func getVersion(tx *kv.Txn, userID string, v uint64) (rec versionRecord, found bool, err error) {
	err = tx.GetJSON(versionKey(userID, v), &rec)
	if errors.Is(err, kv.ErrNotFound) {
		return rec, false, nil
	}
	return rec, err == nil, err
}

// maxConflictRetries bounds how often a transaction that lost a write
// conflict (two requests on one user's backup at once) is run again; each
// round lets at least one of them commit.
const maxConflictRetries = 64

// update runs fn in a transaction, again when it loses a write conflict.
// fn must be safe to run again.
func (b *KeyBackups) update(ctx context.Context, fn func(tx *kv.Txn) error) error {
	for i := 0; ; i++ {
		err := b.db.Update(fn)
		if errors.Is(err, kv.ErrTxnTooBig) {
			return fmt.Errorf("%w: too much key backup data in one request", core.ErrTooLarge)
		}
		if !errors.Is(err, kv.ErrConflict) || i+1 >= maxConflictRetries {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}
