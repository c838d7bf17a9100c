package media

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/edgenode/edgenode/kv"
)

// Upload describes a local upload's metadata.
type Upload struct {
	// Uploader is the local user uploading.
	Uploader string
	// ContentType is the upload's Content-Type (application/octet-stream
	// if empty).
	ContentType string
	// FileName is the filename query parameter, if any.
	FileName string
	// Restricted marks media the frozen unauthenticated endpoints do not
	// serve (see Record.Restricted).
	Restricted bool
	// Size, if positive, is the announced length (Content-Length): a size
	// over a limit fails at once, before any byte is read.
	Size int64
}

// Put stores body as a new local media item under a new media ID. The body
// is streamed to disk, never held whole; it fails with ErrTooLarge past
// MaxUploadBytes and ErrQuota past the uploader's or the node's quota,
// without reading more than one byte past the limit.
func (s *Store) Put(ctx context.Context, up Upload, body io.Reader) (Record, error) {
	return s.put(ctx, newID(), up, body, false)
}

// put streams body and indexes it as local media id. fromPending says id
// was created (pending.go) and must still be pending at the commit.
func (s *Store) put(ctx context.Context, id string, up Upload, body io.Reader, fromPending bool) (Record, error) {
	if up.ContentType == "" {
		up.ContentType = "application/octet-stream"
	}
	limit, quotaBound, err := s.uploadLimit(up.Uploader)
	if err != nil {
		return Record{}, err
	}
	if up.Size > s.limits.MaxUploadBytes {
		return Record{}, overLimit(false, s.limits.MaxUploadBytes)
	}
	if up.Size > limit {
		return Record{}, overLimit(quotaBound, limit)
	}
	t, err := s.writeTemp(ctx, body, limit)
	if errors.Is(err, errOverLimit) {
		return Record{}, overLimit(quotaBound, limit)
	}
	if err != nil {
		return Record{}, err
	}
	rec := Record{
		Origin: s.serverName, ID: id, Hash: t.hash, ContentType: up.ContentType, Size: t.size,
		Uploader: up.Uploader, FileName: up.FileName, CreatedMS: s.now().UnixMilli(), Restricted: up.Restricted,
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.place(t); err != nil {
		return Record{}, err
	}
	err = s.update(func(tx *kv.Txn) error {
		if ok, err := tx.Has(kv.Key(tLocal, id)); err != nil {
			return err
		} else if ok {
			return ErrCannotOverwrite
		}
		if fromPending {
			if err := s.takePending(tx, id, up.Uploader); err != nil {
				return err
			}
		}
		if err := s.checkQuota(tx, up.Uploader, t.size); err != nil {
			return err
		}
		if err := tx.SetJSON(kv.Key(tLocal, id), rec); err != nil {
			return err
		}
		if _, err := addUint(tx, kv.Key(tUsage, up.Uploader), t.size); err != nil {
			return err
		}
		if err := addCounter(tx, counterLocalBytes, t.size); err != nil {
			return err
		}
		if err := addCounter(tx, counterLocalFiles, 1); err != nil {
			return err
		}
		return addRef(tx, t.hash, t.size)
	})
	if err != nil {
		s.unplaceIfUnused(t.hash)
		return Record{}, err
	}
	s.wake(id)
	return rec, nil
}

// uploadLimit is how many bytes uploader may upload now, and whether a
// quota (rather than MaxUploadBytes) is what bounds it.
func (s *Store) uploadLimit(uploader string) (limit int64, quotaBound bool, err error) {
	limit = s.limits.MaxUploadBytes
	err = s.db.View(func(tx *kv.Txn) error {
		for _, q := range []struct {
			quota int64
			key   []byte
		}{
			{s.limits.UserQuotaBytes, kv.Key(tUsage, uploader)},
			{s.limits.TotalQuotaBytes, kv.Key(tCounter, counterLocalBytes)},
		} {
			if q.quota < 0 {
				continue
			}
			used, err := getUint(tx, q.key)
			if err != nil {
				return err
			}
			if left := q.quota - int64(used); left < limit {
				limit, quotaBound = max(left, 0), true
			}
		}
		return nil
	})
	if err == nil && quotaBound && limit == 0 {
		return 0, true, ErrQuota
	}
	return limit, quotaBound, err
}

// checkQuota fails with ErrQuota if size more bytes from uploader exceed a
// quota (checked again at the commit: uploads run concurrently).
func (s *Store) checkQuota(tx *kv.Txn, uploader string, size int64) error {
	if q := s.limits.UserQuotaBytes; q >= 0 {
		used, err := getUint(tx, kv.Key(tUsage, uploader))
		if err != nil {
			return err
		}
		if int64(used)+size > q {
			return fmt.Errorf("%w: %s has %d of %d bytes", ErrQuota, uploader, used, q)
		}
	}
	if q := s.limits.TotalQuotaBytes; q >= 0 {
		used, err := counter(tx, counterLocalBytes)
		if err != nil {
			return err
		}
		if int64(used)+size > q {
			return fmt.Errorf("%w: the node holds %d of %d bytes", ErrQuota, used, q)
		}
	}
	return nil
}

// overLimit is the error for content over limit bytes.
func overLimit(quotaBound bool, limit int64) error {
	if quotaBound {
		return fmt.Errorf("%w: %d bytes left", ErrQuota, limit)
	}
	return fmt.Errorf("%w: at most %d bytes", ErrTooLarge, limit)
}
