package media

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/edgenode/edgenode/kv"
)

// DefaultSweepInterval is how often the store sweeps its directory for
// files nothing references, unless Options.SweepInterval says otherwise.
const DefaultSweepInterval = time.Hour

// Options configures Open.
type Options struct {
	// DB is the node's database; the store keeps its index there (tables
	// named "media.*"). The caller closes it, after the store.
	DB *kv.DB
	// Dir is the store's directory (<data dir>/media); it is created.
	Dir string
	// ServerName is this server's name: media IDs of this origin are local.
	ServerName string
	// Profile picks the default Limits ("phone", "pi", "server").
	Profile string
	// Limits overrides the profile's; zero fields keep its values.
	Limits Limits
	// SweepInterval is how often the directory is swept after the sweep
	// at Open (zero: DefaultSweepInterval; negative: only at Open).
	SweepInterval time.Duration
	// Logger; nil is slog.Default().
	Logger *slog.Logger
	// Clock, if set, replaces time.Now (tests).
	Clock func() time.Time
}

// Store is an open media store. Its methods are safe for concurrent use.
type Store struct {
	db         *kv.DB
	dir        string
	serverName string
	limits     Limits
	log        *slog.Logger
	now        func() time.Time

	// mu guards the content directory and the byte counters: every
	// rename into content/, every removal, and every index commit that
	// adds or drops a reference happens under it, so a sweep or an
	// eviction never removes a file a commit is about to reference.
	mu sync.Mutex
	// temps are the temporary files being written (under mu): the sweep
	// leaves them alone.
	temps map[string]struct{}

	// waiters are the downloads waiting for pending media IDs (pending.go).
	waitMu  sync.Mutex
	waiters map[string]*waiter

	thumbs *thumbnailer // thumbnail.go

	stop     chan struct{}
	stopped  chan struct{}
	closeMu  sync.Once
	isClosed chan struct{}
}

// Open opens the store in opts.Dir, sweeps it (removing what a crash left)
// and starts the periodic sweep.
func Open(ctx context.Context, opts Options) (*Store, error) {
	if opts.DB == nil || opts.Dir == "" || opts.ServerName == "" {
		return nil, errors.New("media: Open needs a DB, a Dir and a ServerName")
	}
	def, err := LimitsForProfile(opts.Profile)
	if err != nil {
		return nil, err
	}
	s := &Store{
		db:         opts.DB,
		dir:        opts.Dir,
		serverName: opts.ServerName,
		limits:     opts.Limits.withDefaults(def),
		log:        opts.Logger,
		now:        opts.Clock,
		temps:      map[string]struct{}{},
		waiters:    map[string]*waiter{},
		stop:       make(chan struct{}),
		stopped:    make(chan struct{}),
		isClosed:   make(chan struct{}),
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.log = s.log.With("component", "media")
	if s.now == nil {
		s.now = time.Now
	}
	s.thumbs = newThumbnailer(s.limits.ThumbnailWorkers)
	for _, d := range []string{s.tmpDir(), s.contentDir()} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("media: %w", err)
		}
	}
	res, err := s.Sweep(ctx)
	if err != nil {
		return nil, err
	}
	if res.Files > 0 || res.Pending > 0 {
		s.log.Info("media sweep at start", "removed_files", res.Files, "removed_bytes", res.Bytes, "expired_pending", res.Pending)
	}
	interval := opts.SweepInterval
	if interval == 0 {
		interval = DefaultSweepInterval
	}
	go s.sweepLoop(interval)
	return s, nil
}

// Close stops the periodic sweep. It does not close the database.
func (s *Store) Close() error {
	s.closeMu.Do(func() {
		close(s.isClosed)
		close(s.stop)
		<-s.stopped
	})
	return nil
}

// ServerName is this server's name: media of this origin are local.
func (s *Store) ServerName() string { return s.serverName }

// Limits are the store's limits (the profile's, with Options.Limits'
// overrides).
func (s *Store) Limits() Limits { return s.limits }

func (s *Store) tmpDir() string     { return filepath.Join(s.dir, "tmp") }
func (s *Store) contentDir() string { return filepath.Join(s.dir, "content") }

// contentPath is where the content with this hex SHA-256 lives.
func (s *Store) contentPath(hash string) string {
	return filepath.Join(s.contentDir(), hash[:2], hash[2:])
}

func (s *Store) closed() bool {
	select {
	case <-s.isClosed:
		return true
	default:
		return false
	}
}

// update runs fn in a transaction, again if a concurrent one conflicted.
func (s *Store) update(fn func(*kv.Txn) error) error {
	var err error
	for range 8 {
		if err = s.db.Update(fn); !errors.Is(err, kv.ErrConflict) {
			return err
		}
	}
	return err
}
