package media

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/edgenode/edgenode/kv"
)

// pendingRecord is a media ID created (POST /media/v1/create) and not yet
// uploaded.
type pendingRecord struct {
	Uploader  string `json:"uploader"`
	ExpiresMS int64  `json:"expires_ms"`
}

// Create reserves a new media ID for uploader's later PutPending, valid
// until the returned time. A user may hold Limits.MaxPendingPerUser
// unexpired IDs (ErrPendingLimit).
func (s *Store) Create(ctx context.Context, uploader string) (id string, expires time.Time, err error) {
	if err := ctx.Err(); err != nil {
		return "", time.Time{}, err
	}
	id = newID()
	now := s.now()
	expires = now.Add(s.limits.PendingTTL)
	err = s.update(func(tx *kv.Txn) error {
		n := 0
		var expired []string
		err := tx.Each(kv.Scan{Prefix: kv.Key(tPendingUser, uploader)}, func(k, _ []byte) (bool, error) {
			pid, err := kv.LastString(k)
			if err != nil {
				return false, err
			}
			var p pendingRecord
			if err := tx.GetJSON(kv.Key(tPending, pid), &p); err != nil && !errors.Is(err, kv.ErrNotFound) {
				return false, err
			}
			if p.ExpiresMS <= now.UnixMilli() {
				expired = append(expired, pid)
			} else {
				n++
			}
			return true, nil
		})
		if err != nil {
			return err
		}
		for _, pid := range expired {
			if err := deletePending(tx, pid, uploader); err != nil {
				return err
			}
		}
		if n >= s.limits.MaxPendingPerUser {
			return fmt.Errorf("%w: %d pending", ErrPendingLimit, n)
		}
		if err := tx.SetJSON(kv.Key(tPending, id), pendingRecord{Uploader: uploader, ExpiresMS: expires.UnixMilli()}); err != nil {
			return err
		}
		return tx.Set(kv.Key(tPendingUser, uploader, id), nil)
	})
	if err != nil {
		return "", time.Time{}, err
	}
	return id, expires, nil
}

// PutPending uploads the content of a media ID made by Create. It fails
// with ErrNotFound for an unknown or expired ID, ErrForbidden for another
// user's, ErrCannotOverwrite once uploaded, and as Put does past a limit.
func (s *Store) PutPending(ctx context.Context, id string, up Upload, body io.Reader) (Record, error) {
	if !ValidID(id) {
		return Record{}, ErrInvalidID
	}
	// Checked before the body is read, and again at the commit.
	if err := s.db.View(func(tx *kv.Txn) error { return s.checkPending(tx, id, up.Uploader) }); err != nil {
		return Record{}, err
	}
	return s.put(ctx, id, up, body, true)
}

// checkPending fails unless id is pending, unexpired and uploader's.
func (s *Store) checkPending(tx *kv.Txn, id, uploader string) error {
	var p pendingRecord
	err := tx.GetJSON(kv.Key(tPending, id), &p)
	if errors.Is(err, kv.ErrNotFound) {
		if ok, err := tx.Has(kv.Key(tLocal, id)); err != nil {
			return err
		} else if ok {
			return ErrCannotOverwrite
		}
		return ErrNotFound
	}
	if err != nil {
		return err
	}
	if p.ExpiresMS <= s.now().UnixMilli() {
		return fmt.Errorf("%w: media ID expired", ErrNotFound)
	}
	if p.Uploader != uploader {
		return ErrForbidden
	}
	return nil
}

// takePending checks id as checkPending does and deletes its pending entry.
func (s *Store) takePending(tx *kv.Txn, id, uploader string) error {
	if err := s.checkPending(tx, id, uploader); err != nil {
		return err
	}
	return deletePending(tx, id, uploader)
}

func deletePending(tx *kv.Txn, id, uploader string) error {
	if err := tx.Delete(kv.Key(tPending, id)); err != nil {
		return err
	}
	return tx.Delete(kv.Key(tPendingUser, uploader, id))
}

// pendingState reports whether local id is pending (created, unexpired,
// not uploaded).
func (s *Store) pendingState(tx *kv.Txn, id string) (bool, error) {
	var p pendingRecord
	err := tx.GetJSON(kv.Key(tPending, id), &p)
	if errors.Is(err, kv.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return p.ExpiresMS > s.now().UnixMilli(), nil
}

// waiter is the downloads waiting for one pending media ID.
type waiter struct {
	c chan struct{} // closed at the upload
	n int           // downloads waiting
}

// WaitUploaded waits until local media id, created and pending, is
// uploaded, or ctx ends. It returns at once if id is not pending.
func (s *Store) WaitUploaded(ctx context.Context, id string) error {
	s.waitMu.Lock()
	w, ok := s.waiters[id]
	if !ok {
		w = &waiter{c: make(chan struct{})}
		s.waiters[id] = w
	}
	w.n++
	s.waitMu.Unlock()
	defer func() {
		s.waitMu.Lock()
		w.n--
		if w.n == 0 && s.waiters[id] == w {
			delete(s.waiters, id)
		}
		s.waitMu.Unlock()
	}()
	// Registered first, checked second: an upload in between still wakes us.
	var pending bool
	if err := s.db.View(func(tx *kv.Txn) error {
		var err error
		pending, err = s.pendingState(tx, id)
		return err
	}); err != nil || !pending {
		return err
	}
	select {
	case <-w.c:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// wake wakes the downloads waiting for id.
func (s *Store) wake(id string) {
	s.waitMu.Lock()
	defer s.waitMu.Unlock()
	if w, ok := s.waiters[id]; ok {
		close(w.c)
		delete(s.waiters, id)
	}
}
