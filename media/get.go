package media

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/edgenode/edgenode/kv"
)

// Content is an open media item: its record and its bytes (an
// io.ReadSeekCloser). The caller closes it. It stays readable even if the
// item is evicted meanwhile (an open file outlives its removal).
type Content struct {
	Record
	body   io.ReadSeeker
	closer io.Closer
}

// Read reads the content.
func (c *Content) Read(p []byte) (int, error) { return c.body.Read(p) }

// Seek seeks in the content (http.ServeContent answers ranges with it).
func (c *Content) Seek(offset int64, whence int) (int64, error) { return c.body.Seek(offset, whence) }

// Close releases the content's file.
func (c *Content) Close() error {
	if c.closer == nil {
		return nil
	}
	return c.closer.Close()
}

// Local reports whether origin is this server.
func (s *Store) Local(origin string) bool { return origin == s.serverName }

// Get opens the media item origin/id: local media, or another server's
// from the remote cache (which marks it used). It fails with ErrNotFound,
// ErrInvalidID, or ErrNotYetUploaded for a created ID still pending
// (WaitUploaded waits for it).
func (s *Store) Get(ctx context.Context, origin, id string) (*Content, error) {
	if !ValidID(id) || !ValidServerName(origin) {
		return nil, ErrInvalidID
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var rec Record
	err := s.db.View(func(tx *kv.Txn) error {
		var err error
		if s.Local(origin) {
			rec, err = getRecord(tx, kv.Key(tLocal, id), origin, id)
			if errors.Is(err, ErrNotFound) {
				if p, perr := s.pendingState(tx, id); perr != nil {
					return perr
				} else if p {
					return ErrNotYetUploaded
				}
			}
			return err
		}
		rec, err = getRecord(tx, kv.Key(tRemote, origin, id), origin, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	c, err := s.open(rec)
	if err != nil {
		return nil, err
	}
	if !s.Local(origin) {
		s.touch(rec)
	}
	return c, nil
}

// open opens rec's file.
func (s *Store) open(rec Record) (*Content, error) {
	if len(rec.Hash) != 64 {
		return nil, fmt.Errorf("media: %s/%s: bad hash %q", rec.Origin, rec.ID, rec.Hash)
	}
	f, err := os.Open(s.contentPath(rec.Hash))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			// Indexed but gone: evicted between the lookup and the open,
			// or removed by hand. Not there, either way.
			return nil, fmt.Errorf("%w: %s/%s: content file missing", ErrNotFound, rec.Origin, rec.ID)
		}
		return nil, fmt.Errorf("media: %w", err)
	}
	return &Content{Record: rec, body: f, closer: f}, nil
}
