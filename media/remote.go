package media

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"github.com/edgenode/edgenode/kv"
)

// RemoteFetcher fetches another server's media into the store. The client
// API calls it for a download of media not in the cache; nil means this
// node fetches nothing (the download answers 404 M_NOT_FOUND). An
// implementation streams the origin's bytes into Store.PutRemote (which
// bounds them) and returns Store.Get's answer; concurrent calls for the
// same item should share one fetch.
type RemoteFetcher interface {
	// Fetch makes origin/id available in the remote cache and opens it.
	// It fails with ErrNotFound if the origin has no such media, and
	// ErrTooLarge if it is larger than the store allows.
	Fetch(ctx context.Context, origin, id string) (*Content, error)
}

// RemoteMeta is what the origin says of a remote item.
type RemoteMeta struct {
	ContentType string
	FileName    string
	// Restricted marks an item fetched while the unauthenticated media
	// endpoints are frozen (see Record.Restricted).
	Restricted bool
}

// touchEvery is how stale a cached item's last access may get before a
// read records a new one: an LRU position to the minute costs one write a
// minute per item read, not one per read.
const touchEvery = time.Minute

// MaxRemoteBytes is the largest remote item PutRemote accepts: the upload
// limit, and never more than the remote cache's budget.
func (s *Store) MaxRemoteBytes() int64 {
	return min(s.limits.MaxUploadBytes, s.limits.RemoteCacheBytes)
}

// PutRemote caches origin's media id: body is streamed to disk (never more
// than maxBytes, and never more than MaxRemoteBytes, or ErrTooLarge), then
// indexed, and the least recently used items are evicted beyond the cache's
// budget. Caching an item already cached replaces it.
func (s *Store) PutRemote(ctx context.Context, origin, id string, meta RemoteMeta, body io.Reader, maxBytes int64) (Record, error) {
	if !ValidID(id) || !ValidServerName(origin) || s.Local(origin) {
		return Record{}, ErrInvalidID
	}
	limit := s.MaxRemoteBytes()
	if maxBytes > 0 && maxBytes < limit {
		limit = maxBytes
	}
	t, err := s.writeTemp(ctx, body, limit)
	if errors.Is(err, errOverLimit) {
		return Record{}, overLimit(false, limit)
	}
	if err != nil {
		return Record{}, err
	}
	if meta.ContentType == "" {
		meta.ContentType = "application/octet-stream"
	}
	now := s.now().UnixMilli()
	rec := Record{
		Origin: origin, ID: id, Hash: t.hash, ContentType: meta.ContentType, Size: t.size,
		FileName: meta.FileName, CreatedMS: now, LastAccessMS: now, Restricted: meta.Restricted,
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.place(t); err != nil {
		return Record{}, err
	}
	var freed []string
	err = s.update(func(tx *kv.Txn) error {
		freed = freed[:0]
		old, err := getRecord(tx, kv.Key(tRemote, origin, id), origin, id)
		if err == nil {
			gone, err := dropRemote(tx, old)
			if err != nil {
				return err
			}
			freed = append(freed, gone...)
		} else if !errors.Is(err, ErrNotFound) {
			return err
		}
		if err := tx.SetJSON(kv.Key(tRemote, origin, id), rec); err != nil {
			return err
		}
		if err := tx.Set(kv.Key(tLRU, uint64(now), origin, id), nil); err != nil {
			return err
		}
		if err := addCounter(tx, counterRemoteBytes, t.size); err != nil {
			return err
		}
		if err := addCounter(tx, counterRemoteFiles, 1); err != nil {
			return err
		}
		return addRef(tx, t.hash, t.size)
	})
	if err != nil {
		s.unplaceIfUnused(t.hash)
		return Record{}, err
	}
	// The same bytes cached again: their file is the new entry's too.
	freed = slices.DeleteFunc(freed, func(h string) bool { return h == t.hash })
	s.removeFiles(freed)
	if _, err := s.evictLocked(s.limits.RemoteCacheBytes); err != nil {
		s.log.Warn("media: eviction failed", "err", err)
	}
	return rec, nil
}

// dropRemote deletes a cached remote item's index entries (and its
// thumbnails') in tx and returns the hashes whose last reference went.
func dropRemote(tx *kv.Txn, r Record) (freed []string, err error) {
	if err := tx.Delete(kv.Key(tRemote, r.Origin, r.ID)); err != nil {
		return nil, err
	}
	if err := tx.Delete(kv.Key(tLRU, uint64(r.LastAccessMS), r.Origin, r.ID)); err != nil {
		return nil, err
	}
	if err := addCounter(tx, counterRemoteBytes, -r.Size); err != nil {
		return nil, err
	}
	if err := addCounter(tx, counterRemoteFiles, -1); err != nil {
		return nil, err
	}
	if last, err := dropRef(tx, r.Hash, r.Size); err != nil {
		return nil, err
	} else if last {
		freed = append(freed, r.Hash)
	}
	thumbs, err := dropThumbnails(tx, r.Origin, r.ID)
	return append(freed, thumbs...), err
}

// EvictRemote evicts least recently used cached remote items until the
// cache holds at most budget bytes, and returns the bytes evicted.
func (s *Store) EvictRemote(ctx context.Context, budget int64) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.evictLocked(budget)
}

// evictLocked is EvictRemote under s.mu. It evicts in transactions of a
// bounded number of items (a transaction's size is bounded).
func (s *Store) evictLocked(budget int64) (int64, error) {
	const batch = 64
	var evicted int64
	for {
		var freed []string
		var done bool
		var bytes int64
		err := s.update(func(tx *kv.Txn) error {
			freed, bytes, done = freed[:0], 0, false
			used, err := counter(tx, counterRemoteBytes)
			if err != nil {
				return err
			}
			over := int64(used) - budget
			if over <= 0 {
				done = true
				return nil
			}
			var victims []Record
			err = tx.Each(kv.Scan{Prefix: kv.Key(tLRU), KeysOnly: true}, func(k, _ []byte) (bool, error) {
				_, parts, err := kv.DecodeKey(k)
				if err != nil || len(parts) != 3 {
					return false, fmt.Errorf("media: bad LRU key %q: %v", k, err)
				}
				origin, _ := parts[1].(string)
				id, _ := parts[2].(string)
				r, err := getRecord(tx, kv.Key(tRemote, origin, id), origin, id)
				if err != nil {
					return false, err
				}
				victims = append(victims, r)
				over -= r.Size
				return over > 0 && len(victims) < batch, nil
			})
			if err != nil {
				return err
			}
			if len(victims) == 0 {
				done = true
				return nil
			}
			for _, r := range victims {
				gone, err := dropRemote(tx, r)
				if err != nil {
					return err
				}
				freed = append(freed, gone...)
				bytes += r.Size
			}
			done = over <= 0
			return nil
		})
		if err != nil {
			return evicted, err
		}
		s.removeFiles(freed)
		evicted += bytes
		if done {
			return evicted, nil
		}
	}
}

// removeFiles removes the content files of hashes no longer referenced
// (under s.mu; after their commit). A crash before leaves them to the sweep.
func (s *Store) removeFiles(hashes []string) {
	for _, h := range hashes {
		if err := os.Remove(s.contentPath(h)); err != nil && !errors.Is(err, os.ErrNotExist) {
			s.log.Warn("media: remove file", "hash", h, "err", err)
		}
	}
}

// touch records a read of cached remote item r (its LRU position), at
// most once per touchEvery.
func (s *Store) touch(r Record) {
	now := s.now().UnixMilli()
	if now-r.LastAccessMS < touchEvery.Milliseconds() {
		return
	}
	err := s.update(func(tx *kv.Txn) error {
		cur, err := getRecord(tx, kv.Key(tRemote, r.Origin, r.ID), r.Origin, r.ID)
		if err != nil || cur.Hash != r.Hash || cur.LastAccessMS >= now {
			return err // evicted or replaced meanwhile: nothing to touch
		}
		if err := tx.Delete(kv.Key(tLRU, uint64(cur.LastAccessMS), r.Origin, r.ID)); err != nil {
			return err
		}
		cur.LastAccessMS = now
		if err := tx.SetJSON(kv.Key(tRemote, r.Origin, r.ID), cur); err != nil {
			return err
		}
		return tx.Set(kv.Key(tLRU, uint64(now), r.Origin, r.ID), nil)
	})
	if err != nil && !errors.Is(err, ErrNotFound) {
		s.log.Warn("media: record access", "origin", r.Origin, "id", r.ID, "err", err)
	}
}
