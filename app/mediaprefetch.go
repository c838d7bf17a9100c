package app

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgenode/edgenode/federation"
	"github.com/edgenode/edgenode/internal/devprofile"
	"github.com/edgenode/edgenode/media"
	"github.com/edgenode/edgenode/node/mediaref"
)

// Prefetch: "there when the sender sleeps". The node's media references
// queue (node/mediaref) hands over the mxc:// URIs of other servers'
// events as they are committed; workers here fetch them into the remote
// cache at once, while the origin (a phone, perhaps) is still reachable,
// so the picture opens later even if it has gone to sleep. Thumbnails and
// avatars come first in an event's references, and every item is bounded
// by a per-file size; a file the event announces larger is not fetched.
// All of it is bounded by a byte budget per day (a metered network's
// setting turns it off altogether). Work that does not fit (a full queue,
// a spent budget) is dropped and counted, never waited for.

// PrefetchLimits bound the background fetching of other servers' media;
// zero fields take the profile's (prefetchDefaults).
type PrefetchLimits struct {
	// MaxFileBytes is the largest item prefetched.
	MaxFileBytes int64
	// BytesPerDay bounds the bytes prefetched in a day.
	BytesPerDay int64
	// Workers bounds the prefetches running at once.
	Workers int
}

// prefetchDefaults are a profile's prefetch limits: a phone fetches
// photos and voice notes but not videos, and at most a little under its
// remote cache a day, so prefetch cannot churn the cache faster than that.
func prefetchDefaults(profile string) PrefetchLimits {
	switch devprofile.Resolve(profile) {
	case devprofile.Phone:
		return PrefetchLimits{MaxFileBytes: 10 << 20, BytesPerDay: 200 << 20, Workers: 1}
	case devprofile.Server:
		return PrefetchLimits{MaxFileBytes: 50 << 20, BytesPerDay: 4 << 30, Workers: 2}
	default:
		return PrefetchLimits{MaxFileBytes: 25 << 20, BytesPerDay: 1 << 30, Workers: 2}
	}
}

func (l PrefetchLimits) withDefaults(d PrefetchLimits) PrefetchLimits {
	if l.MaxFileBytes <= 0 {
		l.MaxFileBytes = d.MaxFileBytes
	}
	if l.BytesPerDay <= 0 {
		l.BytesPerDay = d.BytesPerDay
	}
	if l.Workers <= 0 {
		l.Workers = d.Workers
	}
	return l
}

// prefetchTimeout bounds one prefetch.
const prefetchTimeout = 10 * time.Minute

// MediaPrefetchStats are the prefetch's counts since the app started.
type MediaPrefetchStats struct {
	// Enabled: references are being queued and fetched.
	Enabled bool `json:"enabled"`
	// Fetched items, and Cached ones that were there already.
	Fetched int64 `json:"fetched"`
	Cached  int64 `json:"cached"`
	// TooLarge: items over the per-file size (announced, or found while
	// fetching); OverBudget: items the day's budget had no room for;
	// Failed: fetches that failed otherwise (the origin unreachable, say).
	TooLarge   int64 `json:"too_large"`
	OverBudget int64 `json:"over_budget"`
	Failed     int64 `json:"failed"`
	// Dropped: references dropped because the queue was full.
	Dropped int64 `json:"dropped"`
	// BytesToday are the bytes charged to the current day's budget.
	BytesToday int64 `json:"bytes_today"`
}

// prefetcher drains the media references queue.
type prefetcher struct {
	fetch *federation.MediaFetcher
	store *media.Store
	queue *mediaref.Queue
	lim   PrefetchLimits
	log   *slog.Logger
	now   func() time.Time

	mu          sync.Mutex
	windowStart time.Time
	used        int64

	fetched, cached, tooLarge, overBudget, failed atomic.Int64

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// startPrefetch starts the prefetch workers; the queue is enabled unless
// the configuration turns prefetch off.
func (a *App) startPrefetch(cfg Config) {
	p := &prefetcher{
		fetch: a.mediaFetch, store: a.media, queue: a.node.MediaRefs(),
		lim: cfg.Media.Prefetch.withDefaults(prefetchDefaults(cfg.Node.StorageProfile)),
		log: a.log.With("component", "media-prefetch"), now: time.Now,
	}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	for range p.lim.Workers {
		p.wg.Add(1)
		go p.run()
	}
	a.prefetch = p
	p.queue.SetEnabled(!cfg.Media.NoPrefetch)
}

// stop stops the workers (a prefetch in progress is cancelled).
func (p *prefetcher) stop() {
	p.queue.SetEnabled(false)
	p.cancel()
	p.wg.Wait()
}

func (p *prefetcher) run() {
	defer p.wg.Done()
	for {
		select {
		case <-p.ctx.Done():
			return
		case r := <-p.queue.C():
			p.handle(r)
		}
	}
}

// handle prefetches one reference within the limits.
func (p *prefetcher) handle(r mediaref.Ref) {
	if !p.queue.Enabled() {
		return // turned off since it was queued
	}
	ctx, cancel := context.WithTimeout(p.ctx, prefetchTimeout)
	defer cancel()
	if c, err := p.store.Get(ctx, r.Origin, r.ID); err == nil {
		c.Close()
		p.cached.Add(1)
		return
	}
	if r.Size > p.lim.MaxFileBytes {
		p.tooLarge.Add(1)
		return
	}
	granted := p.reserve(p.lim.MaxFileBytes)
	if granted <= 0 || granted < r.Size {
		p.refund(granted)
		p.overBudget.Add(1)
		return
	}
	c, err := p.fetch.FetchLimited(ctx, r.Origin, r.ID, granted)
	switch {
	case err == nil:
		p.refund(granted - c.Size)
		c.Close()
		p.fetched.Add(1)
	case errors.Is(err, media.ErrTooLarge):
		// Charged in full: that much may have come before it was cut off.
		if granted < p.lim.MaxFileBytes {
			p.overBudget.Add(1)
		} else {
			p.tooLarge.Add(1)
		}
	default:
		p.refund(granted)
		p.failed.Add(1)
		p.log.Debug("prefetch failed", "origin", r.Origin, "media_id", r.ID, "err", err)
	}
}

// reserve takes up to n bytes of the day's budget and returns how many.
func (p *prefetcher) reserve(n int64) int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rollLocked()
	n = min(n, p.lim.BytesPerDay-p.used)
	if n <= 0 {
		return 0
	}
	p.used += n
	return n
}

// refund returns n reserved bytes that were not used.
func (p *prefetcher) refund(n int64) {
	if n <= 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.used = max(p.used-n, 0)
}

// rollLocked starts a new day's budget when the current one is over.
func (p *prefetcher) rollLocked() {
	if now := p.now(); now.Sub(p.windowStart) >= 24*time.Hour {
		p.windowStart, p.used = now, 0
	}
}

func (p *prefetcher) stats() MediaPrefetchStats {
	p.mu.Lock()
	used := p.used
	p.mu.Unlock()
	return MediaPrefetchStats{
		Enabled: p.queue.Enabled(), Fetched: p.fetched.Load(), Cached: p.cached.Load(),
		TooLarge: p.tooLarge.Load(), OverBudget: p.overBudget.Load(), Failed: p.failed.Load(),
		Dropped: p.queue.Dropped(), BytesToday: used,
	}
}

// SetMediaPrefetch turns the prefetch of other servers' media on or off
// (off on a metered network, say); it starts with MediaConfig.NoPrefetch.
// Without federation there is nothing to prefetch and it does nothing.
func (a *App) SetMediaPrefetch(on bool) {
	if a.prefetch != nil {
		a.prefetch.queue.SetEnabled(on)
	}
}

// MediaPrefetchStats are the prefetch's counts (zero without federation).
func (a *App) MediaPrefetchStats() MediaPrefetchStats {
	if a.prefetch == nil {
		return MediaPrefetchStats{}
	}
	return a.prefetch.stats()
}
