package federation

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgenode/edgenode/media"
	"github.com/edgenode/edgenode/node/core"
	"golang.org/x/sync/singleflight"
)

// MediaFetcher fetches other servers' media into the media store over
// federation: it implements media.RemoteFetcher for the client API's
// downloads, and FetchLimited for the background prefetch. Concurrent
// requests for the same item share one fetch (singleflight); fetches are
// bounded per origin and overall, and each is cut off when its origin
// stalls.
type MediaFetcher struct {
	c     *Client
	store *media.Store
	opts  MediaFetcherOptions
	log   *slog.Logger

	group singleflight.Group
	total chan struct{} // a slot per fetch running, all origins

	mu      sync.Mutex
	origins map[string]*originSlots

	base   context.Context // the fetches' context, cancelled by Close
	cancel context.CancelFunc
	// running counts the fetches in progress, so Close can wait for them
	// (they write to the store, which closes after); closed (under mu)
	// refuses new ones.
	running sync.WaitGroup
	closed  bool

	started atomic.Int64
}

// originSlots bounds one origin's fetches; users counts the fetches
// holding or waiting for a slot, so the entry goes when it reaches zero.
type originSlots struct {
	slots chan struct{}
	users int
}

// MediaFetcherOptions tunes a MediaFetcher; zero fields take the defaults.
type MediaFetcherOptions struct {
	// PerOrigin bounds the fetches from one origin at once (default 2),
	// Total those from all origins (default 6).
	PerOrigin, Total int
	// SlotWait bounds how long a fetch waits for a slot (default 30 s);
	// then it fails, as the origin is unavailable.
	SlotWait time.Duration
	// Stall cuts a fetch off when its origin sends nothing for this long
	// (default 60 s); MaxDuration bounds a whole fetch (default 30 min).
	Stall, MaxDuration time.Duration
	// Restricted marks fetched items as fetched while the unauthenticated
	// media endpoints are frozen (media.RemoteMeta.Restricted).
	Restricted bool
	// Logger; nil is the client's node's.
	Logger *slog.Logger
}

func (o MediaFetcherOptions) withDefaults() MediaFetcherOptions {
	if o.PerOrigin <= 0 {
		o.PerOrigin = 2
	}
	if o.Total <= 0 {
		o.Total = 6
	}
	if o.SlotWait <= 0 {
		o.SlotWait = 30 * time.Second
	}
	if o.Stall <= 0 {
		o.Stall = 60 * time.Second
	}
	if o.MaxDuration <= 0 {
		o.MaxDuration = 30 * time.Minute
	}
	return o
}

var _ media.RemoteFetcher = (*MediaFetcher)(nil)

// NewMediaFetcher returns a fetcher of other servers' media into st
// through c. Close stops its fetches.
func NewMediaFetcher(c *Client, st *media.Store, opts MediaFetcherOptions) *MediaFetcher {
	opts = opts.withDefaults()
	log := opts.Logger
	if log == nil {
		log = c.log
	}
	base, cancel := context.WithCancel(context.Background())
	return &MediaFetcher{
		c: c, store: st, opts: opts, log: log.With("component", "media-fetch"),
		total: make(chan struct{}, opts.Total), origins: map[string]*originSlots{},
		base: base, cancel: cancel,
	}
}

// Close cancels the fetches in progress and waits for them to end; later
// ones fail at once.
func (f *MediaFetcher) Close() {
	f.mu.Lock()
	f.closed = true
	f.mu.Unlock()
	f.cancel()
	f.running.Wait()
}

// errFetcherClosed is what a fetch after Close fails with.
var errFetcherClosed = fmt.Errorf("federation: media fetcher closed: %w", core.ErrRemoteUnavailable)

// Started counts the fetches sent to origins (shared fetches count once).
func (f *MediaFetcher) Started() int64 { return f.started.Load() }

// Fetch implements media.RemoteFetcher: origin/id up to the store's
// limit for remote media.
func (f *MediaFetcher) Fetch(ctx context.Context, origin, id string) (*media.Content, error) {
	return f.FetchLimited(ctx, origin, id, 0)
}

// FetchLimited fetches origin/id into the store, at most maxBytes of it (0:
// the store's limit; more fails with media.ErrTooLarge, announced or not),
// and opens it. Concurrent calls for the same item and limit share one
// fetch; one caller giving up (ctx) does not end it for the others.
func (f *MediaFetcher) FetchLimited(ctx context.Context, origin, id string, maxBytes int64) (*media.Content, error) {
	if !media.ValidID(id) || !media.ValidServerName(origin) || f.store.Local(origin) {
		return nil, media.ErrInvalidID
	}
	key := origin + "/" + id + "/" + strconv.FormatInt(maxBytes, 10)
	ch := f.group.DoChan(key, func() (any, error) {
		return nil, f.fetch(origin, id, maxBytes)
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return nil, res.Err
		}
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return f.store.Get(ctx, origin, id)
}

// fetch streams origin/id into the store.
func (f *MediaFetcher) fetch(origin, id string, maxBytes int64) error {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return errFetcherClosed
	}
	f.running.Add(1)
	f.mu.Unlock()
	defer f.running.Done()
	ctx, cancel := context.WithTimeoutCause(f.base, f.opts.MaxDuration, errors.New("fetch took too long"))
	defer cancel()
	release, err := f.acquire(ctx, origin)
	if err != nil {
		return err
	}
	defer release()
	// The cache may have it by now (a fetch that just ended).
	if c, err := f.store.Get(ctx, origin, id); err == nil {
		c.Close()
		return nil
	}
	f.started.Add(1)
	sctx, stall := withStall(ctx, f.opts.Stall)
	defer stall.stop()
	rm, err := f.c.DownloadMedia(sctx, origin, id)
	if err != nil {
		return err
	}
	defer rm.Close() // before the body's end: the stream is cut off
	limit := f.store.MaxRemoteBytes()
	if maxBytes > 0 && maxBytes < limit {
		limit = maxBytes
	}
	if rm.Length > limit {
		return fmt.Errorf("federation: media %s/%s announces %d bytes: %w (limit %d)", origin, id, rm.Length, media.ErrTooLarge, limit)
	}
	body := &readErr{r: stall.reader(rm.Body)}
	meta := media.RemoteMeta{ContentType: rm.ContentType, FileName: rm.FileName, Restricted: f.opts.Restricted}
	if _, err := f.store.PutRemote(sctx, origin, id, meta, body, limit); err != nil {
		// What the origin did wrong (a broken or stalled stream) is the
		// origin's unavailability (502); too large is the store's
		// M_TOO_LARGE; anything else is this node's.
		if !errors.Is(err, media.ErrTooLarge) && (body.err != nil || context.Cause(sctx) != nil) {
			err = fmt.Errorf("%w: %w (%v)", core.ErrRemoteUnavailable, err, context.Cause(sctx))
		}
		f.log.Debug("remote media fetch failed", "origin", origin, "media_id", id, "err", err)
		return fmt.Errorf("federation: media %s/%s: %w", origin, id, err)
	}
	return nil
}

// readErr remembers the first error other than io.EOF its reader gave.
type readErr struct {
	r   io.Reader
	err error
}

func (e *readErr) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF && e.err == nil {
		e.err = err
	}
	return n, err
}

// acquire takes an overall slot and one of origin's, waiting at most
// SlotWait.
func (f *MediaFetcher) acquire(ctx context.Context, origin string) (func(), error) {
	ctx, cancel := context.WithTimeout(ctx, f.opts.SlotWait)
	defer cancel()
	f.mu.Lock()
	o := f.origins[origin]
	if o == nil {
		o = &originSlots{slots: make(chan struct{}, f.opts.PerOrigin)}
		f.origins[origin] = o
	}
	o.users++
	f.mu.Unlock()
	done := func() {
		f.mu.Lock()
		if o.users--; o.users == 0 {
			delete(f.origins, origin)
		}
		f.mu.Unlock()
	}
	busy := func() error {
		done()
		return fmt.Errorf("federation: media from %s: %w: too many fetches waiting (%w)", origin, core.ErrRemoteUnavailable, ctx.Err())
	}
	select {
	case o.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, busy()
	}
	select {
	case f.total <- struct{}{}:
	case <-ctx.Done():
		<-o.slots
		return nil, busy()
	}
	return func() {
		<-f.total
		<-o.slots
		done()
	}, nil
}

// stallTimer cancels a context when the reader it wraps gets nothing for
// its duration.
type stallTimer struct {
	t *time.Timer
	d time.Duration
}

var errStalled = errors.New("the origin stopped sending")

func withStall(ctx context.Context, d time.Duration) (context.Context, *stallTimer) {
	ctx, cancel := context.WithCancelCause(ctx)
	st := &stallTimer{d: d}
	st.t = time.AfterFunc(d, func() { cancel(errStalled) })
	context.AfterFunc(ctx, func() { st.t.Stop() })
	return ctx, st
}

func (s *stallTimer) stop() { s.t.Stop() }

// reader wraps r so each read that brings bytes restarts the timer.
func (s *stallTimer) reader(r io.Reader) io.Reader { return stallReader{r: r, s: s} }

type stallReader struct {
	r io.Reader
	s *stallTimer
}

func (r stallReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if n > 0 {
		r.s.t.Reset(r.s.d)
	}
	return n, err
}
