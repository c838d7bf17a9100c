package media

import (
	"context"
	"encoding/json"

	"github.com/edgenode/edgenode/kv"
)

// Usage is the store's disk use, from the counters the index keeps.
type Usage struct {
	// LocalBytes and LocalFiles count local uploads (each upload once,
	// even if its bytes are shared with another).
	LocalBytes int64 `json:"local_bytes"`
	LocalFiles int64 `json:"local_files"`
	// RemoteBytes and RemoteFiles count the cache of other servers' media.
	RemoteBytes int64 `json:"remote_bytes"`
	RemoteFiles int64 `json:"remote_files"`
	// ThumbnailBytes and ThumbnailFiles count cached thumbnails.
	ThumbnailBytes int64 `json:"thumbnail_bytes"`
	ThumbnailFiles int64 `json:"thumbnail_files"`
	// DiskBytes and DiskFiles count the distinct content files on disk
	// (identical content is stored once).
	DiskBytes int64 `json:"disk_bytes"`
	DiskFiles int64 `json:"disk_files"`
	// RemoteCacheBudget is the remote cache's byte budget.
	RemoteCacheBudget int64 `json:"remote_cache_budget"`
}

// Usage reports the store's disk use.
func (s *Store) Usage(ctx context.Context) (Usage, error) {
	u := Usage{RemoteCacheBudget: s.limits.RemoteCacheBytes}
	if err := ctx.Err(); err != nil {
		return u, err
	}
	err := s.db.View(func(tx *kv.Txn) error {
		for _, c := range []struct {
			name string
			v    *int64
		}{
			{counterLocalBytes, &u.LocalBytes}, {counterLocalFiles, &u.LocalFiles},
			{counterRemoteBytes, &u.RemoteBytes}, {counterRemoteFiles, &u.RemoteFiles},
			{counterThumbBytes, &u.ThumbnailBytes}, {counterThumbFiles, &u.ThumbnailFiles},
			{counterContentBytes, &u.DiskBytes}, {counterContentFiles, &u.DiskFiles},
		} {
			n, err := counter(tx, c.name)
			if err != nil {
				return err
			}
			*c.v = int64(n)
		}
		return nil
	})
	return u, err
}

// UserUsage reports the bytes a user has uploaded (counted against their quota).
func (s *Store) UserUsage(ctx context.Context, user string) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	var n uint64
	err := s.db.View(func(tx *kv.Txn) error {
		var err error
		n, err = getUint(tx, kv.Key(tUsage, user))
		return err
	})
	return int64(n), err
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
