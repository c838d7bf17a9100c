package media

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/edgenode/edgenode/kv"
)

// SweepResult is what a sweep removed.
type SweepResult struct {
	// Files and Bytes are the temporary and content files removed.
	Files int
	Bytes int64
	// Pending is how many expired pending media IDs were dropped.
	Pending int
}

// Sweep removes temporary files no write is using (a crash's leftovers),
// content files no index entry references (a crash between a rename and
// its commit, or between an eviction's commit and its removal), and expired
// pending media IDs. Open runs it, then it runs every SweepInterval.
func (s *Store) Sweep(ctx context.Context) (SweepResult, error) {
	var res SweepResult
	if err := s.sweepPending(ctx, &res); err != nil {
		return res, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// Temporary files: any not being written now.
	ents, err := os.ReadDir(s.tmpDir())
	if err != nil {
		return res, fmt.Errorf("media: sweep: %w", err)
	}
	for _, e := range ents {
		p := filepath.Join(s.tmpDir(), e.Name())
		if _, busy := s.temps[p]; busy {
			continue
		}
		s.removeCounted(p, &res)
	}
	// Content files: any nothing references. Directories hold at most a
	// 256th of the files each; each is checked in one read transaction.
	dirs, err := os.ReadDir(s.contentDir())
	if err != nil {
		return res, fmt.Errorf("media: sweep: %w", err)
	}
	for _, d := range dirs {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		dp := filepath.Join(s.contentDir(), d.Name())
		if !d.IsDir() || len(d.Name()) != 2 {
			s.removeCounted(dp, &res) // nothing of ours
			continue
		}
		files, err := os.ReadDir(dp)
		if err != nil {
			return res, fmt.Errorf("media: sweep: %w", err)
		}
		var orphans []string
		err = s.db.View(func(tx *kv.Txn) error {
			for _, f := range files {
				hash := d.Name() + f.Name()
				used := false
				if len(hash) == 64 && !f.IsDir() {
					var err error
					if used, err = hasRef(tx, hash); err != nil {
						return err
					}
				}
				if !used {
					orphans = append(orphans, filepath.Join(dp, f.Name()))
				}
			}
			return nil
		})
		if err != nil {
			return res, err
		}
		for _, p := range orphans {
			s.removeCounted(p, &res)
		}
	}
	return res, nil
}

// removeCounted removes p (a file, or a stray directory) and counts it.
func (s *Store) removeCounted(p string, res *SweepResult) {
	fi, err := os.Lstat(p)
	if err != nil {
		return
	}
	if err := os.RemoveAll(p); err != nil {
		s.log.Warn("media: sweep: remove", "path", p, "err", err)
		return
	}
	res.Files++
	res.Bytes += fi.Size()
}

// sweepPending drops expired pending media IDs, in bounded transactions.
func (s *Store) sweepPending(ctx context.Context, res *SweepResult) error {
	const batch = 256
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		now := s.now().UnixMilli()
		n := 0
		more := false
		err := s.update(func(tx *kv.Txn) error {
			n, more = 0, false
			type exp struct{ id, uploader string }
			var expired []exp
			err := tx.Each(kv.Scan{Prefix: kv.Key(tPending)}, func(k, v []byte) (bool, error) {
				id, err := kv.LastString(k)
				if err != nil {
					return false, err
				}
				var p pendingRecord
				if err := jsonUnmarshal(v, &p); err != nil {
					return false, err
				}
				if p.ExpiresMS <= now {
					expired = append(expired, exp{id, p.Uploader})
				}
				if len(expired) == batch {
					more = true
					return false, nil
				}
				return true, nil
			})
			if err != nil {
				return err
			}
			for _, e := range expired {
				if err := deletePending(tx, e.id, e.uploader); err != nil {
					return err
				}
			}
			n = len(expired)
			return nil
		})
		if err != nil {
			return err
		}
		res.Pending += n
		if !more {
			return nil
		}
	}
}

func (s *Store) sweepLoop(interval time.Duration) {
	defer close(s.stopped)
	if interval < 0 {
		<-s.stop
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithCancel(context.Background())
			go func() {
				select {
				case <-s.stop:
				case <-ctx.Done():
				}
				cancel()
			}()
			res, err := s.Sweep(ctx)
			cancel()
			if err != nil && !errors.Is(err, context.Canceled) {
				s.log.Warn("media: sweep failed", "err", err)
			} else if res.Files > 0 || res.Pending > 0 {
				s.log.Info("media: swept", "removed_files", res.Files, "removed_bytes", res.Bytes, "expired_pending", res.Pending)
			}
		}
	}
}
