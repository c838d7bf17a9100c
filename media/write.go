package media

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/edgenode/edgenode/kv"
)

// tempFile is content streamed into tmp/, hashed and fsynced, not yet in
// content/.
type tempFile struct {
	path string
	hash string
	size int64
}

// errOverLimit is what limitedReader reads past its limit.
var errOverLimit = errors.New("media: over limit")

// limitedReader reads at most limit+1 bytes of r, and fails with
// errOverLimit at the byte past limit: the body beyond is never read.
type limitedReader struct {
	r     io.Reader
	left  int64 // bytes that may still be read, plus one
	ctx   context.Context
	total int64
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if err := l.ctx.Err(); err != nil {
		return 0, err
	}
	if l.left <= 0 {
		return 0, errOverLimit
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	l.total += int64(n)
	if l.left <= 0 && n > 0 {
		return n, errOverLimit
	}
	return n, err
}

// writeTemp streams body (at most limit bytes; errOverLimit past it) into a
// new temporary file, hashing it on the way, and fsyncs it. The file is
// registered as in use until release is called, so the sweep leaves it.
func (s *Store) writeTemp(ctx context.Context, body io.Reader, limit int64) (t tempFile, err error) {
	if s.closed() {
		return tempFile{}, ErrClosed
	}
	// Created and registered under s.mu: a sweep in between would take
	// the new file for a crash's leftover.
	s.mu.Lock()
	f, err := os.CreateTemp(s.tmpDir(), "up-*")
	if err == nil {
		t.path = f.Name()
		s.temps[t.path] = struct{}{}
	}
	s.mu.Unlock()
	if err != nil {
		return tempFile{}, fmt.Errorf("media: temp file: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			s.release(t)
		}
	}()
	h := sha256.New()
	lr := &limitedReader{r: body, left: limit + 1, ctx: ctx}
	buf := make([]byte, 64<<10)
	n, err := io.CopyBuffer(io.MultiWriter(f, h), lr, buf)
	if err != nil {
		return t, err
	}
	if err := f.Sync(); err != nil {
		return t, fmt.Errorf("media: fsync: %w", err)
	}
	if err := f.Close(); err != nil {
		return t, fmt.Errorf("media: close: %w", err)
	}
	t.hash, t.size = hex.EncodeToString(h.Sum(nil)), n
	return t, nil
}

// release removes t's temporary file (if still there) and forgets it.
func (s *Store) release(t tempFile) {
	s.mu.Lock()
	defer s.mu.Unlock()
	os.Remove(t.path)
	delete(s.temps, t.path)
}

// place moves t's file into content/ (under s.mu). If the content is there
// already (the same bytes uploaded before) the temporary file is dropped:
// files in content/ only ever come from a rename of a complete, fsynced
// file, so the one there is whole.
func (s *Store) place(t tempFile) error {
	dst := s.contentPath(t.hash)
	defer delete(s.temps, t.path)
	if _, err := os.Stat(dst); err == nil {
		os.Remove(t.path)
		return nil
	}
	dir := filepath.Dir(dst)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		os.Remove(t.path)
		return fmt.Errorf("media: %w", err)
	}
	if err := os.Rename(t.path, dst); err != nil {
		os.Remove(t.path)
		return fmt.Errorf("media: rename: %w", err)
	}
	// The rename is durable once its directory is synced; only then may
	// the index point at it.
	return syncDir(dir)
}

// unplaceIfUnused removes hash's file when no index entry references it
// (under s.mu): after a commit that failed, or the last reference dropped.
func (s *Store) unplaceIfUnused(hash string) {
	used := true
	err := s.db.View(func(tx *kv.Txn) error {
		var err error
		used, err = hasRef(tx, hash)
		return err
	})
	if err == nil && !used {
		os.Remove(s.contentPath(hash))
	}
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("media: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("media: fsync %s: %w", dir, err)
	}
	return nil
}
