package keybackup

import (
	"context"
	"fmt"

	"github.com/edgenode/edgenode/kv"
)

// purgeUser deletes the keys of userID's deleted versions. It runs under
// the node's life, not the request's; what it leaves (the node closing, a
// storage error) is finished at the next start (resumePurges). A version
// number is never reused, so keys left meanwhile are never seen.
func (b *KeyBackups) purgeUser(userID string) {
	if err := b.purgeUnder(b.life, userPurgePrefix(userID)); err != nil {
		b.log.Warn("deleting a deleted backup version's keys", "user", userID, "err", err)
	}
}

// resumePurges finishes the purges a previous run left.
func (b *KeyBackups) resumePurges(ctx context.Context) error {
	return b.purgeUnder(ctx, purgePrefix())
}

// purgeUnder purges every version marked under prefix (of tPurge).
func (b *KeyBackups) purgeUnder(ctx context.Context, prefix []byte) error {
	type pending struct {
		user string
		v    uint64
	}
	var todo []pending
	err := b.db.View(func(tx *kv.Txn) error {
		return tx.Each(kv.Scan{Prefix: prefix, KeysOnly: true}, func(k, _ []byte) (bool, error) {
			_, parts, err := kv.DecodeKey(k)
			if err != nil {
				return false, err
			}
			if len(parts) != 2 {
				return false, fmt.Errorf("malformed purge key %q", k)
			}
			user, ok1 := parts[0].(string)
			v, ok2 := parts[1].(uint64)
			if !ok1 || !ok2 {
				return false, fmt.Errorf("malformed purge key %q", k)
			}
			todo = append(todo, pending{user, v})
			return true, nil
		})
	})
	if err != nil {
		return err
	}
	for _, p := range todo {
		if err := b.purgeVersion(ctx, p.user, p.v); err != nil {
			return err
		}
	}
	return nil
}

// purgeVersion deletes a deleted version's keys, deleteBatch per
// transaction, then its purge mark.
func (b *KeyBackups) purgeVersion(ctx context.Context, userID string, v uint64) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		var n int
		err := b.db.Update(func(tx *kv.Txn) error {
			var err error
			n, err = tx.DeleteFirst(kv.Scan{Prefix: keysPrefix(userID, v)}, deleteBatch)
			if err == nil && n < deleteBatch {
				err = tx.Delete(purgeKey(userID, v))
			}
			return err
		})
		if err != nil {
			return fmt.Errorf("purge backup version %d of %s: %w", v, userID, err)
		}
		if n < deleteBatch {
			return nil
		}
	}
}
