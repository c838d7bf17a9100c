package federation

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/edgenode/edgenode/internal/mxhttp"
	"golang.org/x/time/rate"
)

// GlobalLimits bound the inbound federation work of all peers together,
// beside each peer's own Limits. Identities are free on a P2P network: ten
// fresh keys within their per-peer limits sent 1,500 transactions in 6 s
// and the local user's /sync p95 rose to 397 ms. So the node has one
// budget, and peers that share a joined room with its users (the peers its
// users want to hear from) come first: every other peer, however many
// identities, shares a small slice of it. Zero fields take the defaults
// below, sized for a phone or a Pi.
type GlobalLimits struct {
	// MaxInFlight is how many requests all peers together may have in
	// progress (default 16).
	MaxInFlight int
	// Rate and Burst are the token bucket all peers' requests draw from
	// (defaults 200 per second, burst 400).
	Rate  float64
	Burst int
	// StrangerShare is the part of MaxInFlight, Rate and Burst left to
	// peers that share no joined room with a local user (default 0.1; at
	// least two requests in flight and one per second). Such a peer may
	// still join a room or deliver an invite; it cannot crowd out the
	// peers the node's users talk to.
	StrangerShare float64
	// RefreshEvery bounds how often the set of peers sharing a room is
	// read again (default 1 s). It is read again only when room membership
	// has changed since (node.SharedServersGen), so a peer that just joined
	// counts as a stranger for at most this long.
	RefreshEvery time.Duration
}

// Default global limits; see GlobalLimits.
const (
	DefaultGlobalMaxInFlight = 16
	DefaultGlobalRate        = 200
	DefaultGlobalBurst       = 400
	DefaultStrangerShare     = 0.1
	DefaultSharedRefresh     = time.Second
)

func (l GlobalLimits) withDefaults() GlobalLimits {
	if l.MaxInFlight <= 0 {
		l.MaxInFlight = DefaultGlobalMaxInFlight
	}
	if l.Rate <= 0 {
		l.Rate = DefaultGlobalRate
	}
	if l.Burst <= 0 {
		l.Burst = DefaultGlobalBurst
	}
	if l.StrangerShare <= 0 || l.StrangerShare > 1 {
		l.StrangerShare = DefaultStrangerShare
	}
	if l.RefreshEvery <= 0 {
		l.RefreshEvery = DefaultSharedRefresh
	}
	return l
}

// globalLimiter keeps the state GlobalLimits need: two buckets and two
// counts, and the set of peers sharing a room (bounded by the rooms'
// members; no per-peer state of its own).
type globalLimiter struct {
	lim    GlobalLimits
	log    *slog.Logger
	now    func() time.Time
	shared sharedServers

	strangerMaxInFlight int
	strangerRate        float64

	mu               sync.Mutex
	all, strangers   *rate.Limiter
	inFlight         int
	strangerInFlight int
	sharedSet        map[string]bool
	sharedAt         time.Time
	sharedGen        uint64
	refreshing       bool
	rejected         rejectLog
}

// sharedServers is what the global limiter asks the node (node.Node
// implements it): the peers sharing a joined room with a local user, and
// a number that changes whenever that set may have.
type sharedServers interface {
	SharedServers(context.Context) (map[string]bool, error)
	SharedServersGen() uint64
}

func newGlobalLimiter(lim GlobalLimits, log *slog.Logger, now func() time.Time, shared sharedServers) *globalLimiter {
	lim = lim.withDefaults()
	g := &globalLimiter{lim: lim, log: log, now: now, shared: shared}
	// Two at least: a stranger's slow request must not hold up every join.
	g.strangerMaxInFlight = max(2, int(float64(lim.MaxInFlight)*lim.StrangerShare))
	g.strangerRate = max(1, lim.Rate*lim.StrangerShare)
	g.all = rate.NewLimiter(rate.Limit(lim.Rate), lim.Burst)
	g.strangers = rate.NewLimiter(rate.Limit(g.strangerRate), max(1, int(float64(lim.Burst)*lim.StrangerShare)))
	return g
}

// admit lets one request from peer in against the global budget, or
// refuses it with 429 M_LIMIT_EXCEEDED; the caller calls release when done.
func (g *globalLimiter) admit(peer string) (release func(), err error) {
	priority := g.sharesRoom(peer)
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	kind := ""
	var wait time.Duration
	switch {
	case g.inFlight >= g.lim.MaxInFlight:
		kind, wait = "global concurrency", time.Duration(float64(time.Second)/g.lim.Rate)
	case !priority && g.strangerInFlight >= g.strangerMaxInFlight:
		kind, wait = "stranger concurrency", time.Duration(float64(time.Second)/g.strangerRate)
	case !priority && g.strangers.TokensAt(now) < 1:
		kind, wait = "stranger rate", time.Duration((1-g.strangers.TokensAt(now))/g.strangerRate*float64(time.Second))
	case !g.all.AllowN(now, 1):
		kind, wait = "global rate", time.Duration((1-g.all.TokensAt(now))/g.lim.Rate*float64(time.Second))
	}
	if kind != "" {
		if n, ok := g.rejected.note(now); ok {
			g.log.Warn("federation: over the global budget; rejecting requests", "peer", peer, "limit", kind,
				"shares_room", priority, "rejected", n)
		}
		return nil, mxhttp.LimitExceeded(max(wait, time.Millisecond), "server busy (%s limit)", kind)
	}
	if !priority {
		g.strangers.AllowN(now, 1)
		g.strangerInFlight++
	}
	g.inFlight++
	g.rejected.admitted(now)
	var once sync.Once
	return func() {
		once.Do(func() {
			g.mu.Lock()
			defer g.mu.Unlock()
			g.inFlight--
			if !priority {
				g.strangerInFlight--
			}
		})
	}, nil
}

// sharesRoom reports whether peer shares a joined room with a local user.
// The set is read again when membership has changed since the last read
// (and that was RefreshEvery ago), by one request, outside the lock; the
// others use the set they have meanwhile. Until a first read succeeds
// every peer is a stranger.
func (g *globalLimiter) sharesRoom(peer string) bool {
	gen := g.shared.SharedServersGen()
	g.mu.Lock()
	set := g.sharedSet
	stale := set == nil || (gen != g.sharedGen && g.now().Sub(g.sharedAt) >= g.lim.RefreshEvery)
	refresh := stale && !g.refreshing
	if refresh {
		g.refreshing = true
	}
	g.mu.Unlock()
	if refresh {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		fresh, err := g.shared.SharedServers(ctx)
		cancel()
		g.mu.Lock()
		g.refreshing = false
		g.sharedAt = g.now()
		if err == nil {
			set, g.sharedSet, g.sharedGen = fresh, fresh, gen
		} else {
			g.log.Warn("federation: reading the peers that share rooms", "error", err)
		}
		g.mu.Unlock()
	}
	return set[peer]
}
