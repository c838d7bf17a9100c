package federation

import (
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/edgenode/edgenode/internal/mxhttp"
	"golang.org/x/time/rate"
)

// Limits bounds what one transport peer may ask of the federation handler.
// They are checked before a request's body is read or its signature
// verified, so a peer over its limits costs the node next to nothing. Zero
// fields take the defaults below, which are sized for a phone or a
// Raspberry Pi: an honest server sends one transaction at a time to a
// destination and asks for little else, so it never comes near them.
type Limits struct {
	// MaxInFlight is how many requests one peer may have in progress at
	// once (default 8).
	MaxInFlight int
	// Rate is the sustained number of requests per second one peer may make
	// (default 50), and Burst how many it may make at once after a quiet
	// spell (default 200): a token bucket per peer. An honest peer sends a
	// transaction per event in a live conversation, plus typing and
	// presence; a rejected request costs the node next to nothing.
	Rate  float64
	Burst int
	// MaxPeers caps how many peers' state is kept (default 256); a new peer
	// beyond it replaces the idle peer seen longest ago.
	MaxPeers int
	// IdleAfter is how long a peer with nothing in flight is remembered
	// (default 5 minutes); by then its bucket has refilled, so forgetting it
	// loses nothing.
	IdleAfter time.Duration
}

// Default limits; see Limits.
const (
	DefaultMaxInFlight = 8
	DefaultRate        = 50
	DefaultBurst       = 200
	DefaultMaxPeers    = 256
	DefaultIdleAfter   = 5 * time.Minute
)

// limitLogEvery is how often a peer's rejections are logged: once when a
// burst of them starts, then as a count at most this often, so a flood
// cannot flood the log too.
const limitLogEvery = time.Minute

func (l Limits) withDefaults() Limits {
	if l.MaxInFlight <= 0 {
		l.MaxInFlight = DefaultMaxInFlight
	}
	if l.Rate <= 0 {
		l.Rate = DefaultRate
	}
	if l.Burst <= 0 {
		l.Burst = DefaultBurst
	}
	if l.MaxPeers <= 0 {
		l.MaxPeers = DefaultMaxPeers
	}
	if l.IdleAfter <= 0 {
		l.IdleAfter = DefaultIdleAfter
	}
	return l
}

// peerLimiter keeps the per-peer state Limits need: a bounded map, swept of
// idle peers as requests arrive (no goroutine of its own to stop).
type peerLimiter struct {
	lim Limits
	log *slog.Logger
	now func() time.Time

	mu        sync.Mutex
	peers     map[string]*peerState
	lastSweep time.Time
	full      rejectLog // new peers refused because every slot is busy
}

type peerState struct {
	bucket   *rate.Limiter
	inFlight int
	lastSeen time.Time
	rejected rejectLog
}

// rejectLog counts rejections so they are logged once per burst, not once
// per request.
type rejectLog struct {
	count    int       // rejections not logged yet
	loggedAt time.Time // zero: nothing logged in the current burst
}

// note counts one rejection and reports whether to log now, with how many
// rejections the log line stands for.
func (rl *rejectLog) note(now time.Time) (int, bool) {
	rl.count++
	if !rl.loggedAt.IsZero() && now.Sub(rl.loggedAt) < limitLogEvery {
		return 0, false
	}
	n := rl.count
	rl.count, rl.loggedAt = 0, now
	return n, true
}

// admitted ends a burst once it has been quiet for limitLogEvery: the next
// rejection is logged at once.
func (rl *rejectLog) admitted(now time.Time) {
	if rl.count == 0 && !rl.loggedAt.IsZero() && now.Sub(rl.loggedAt) >= limitLogEvery {
		rl.loggedAt = time.Time{}
	}
}

func newPeerLimiter(lim Limits, log *slog.Logger, now func() time.Time) *peerLimiter {
	return &peerLimiter{lim: lim.withDefaults(), log: log, now: now, peers: map[string]*peerState{}}
}

// admit lets one request from peer in, or refuses it with 429
// M_LIMIT_EXCEEDED. The caller calls release when the request is done.
func (l *peerLimiter) admit(peer string) (release func(), err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	l.sweep(now)
	st := l.peers[peer]
	if st == nil {
		if len(l.peers) >= l.lim.MaxPeers && !l.evictOne() {
			// Every tracked peer has requests in flight: the node is busy.
			if n, ok := l.full.note(now); ok {
				l.log.Warn("federation: too many peers busy; refusing new ones", "peer", peer, "rejected", n, "max_peers", l.lim.MaxPeers)
			}
			return nil, mxhttp.LimitExceeded(time.Second, "server busy")
		}
		st = &peerState{bucket: rate.NewLimiter(rate.Limit(l.lim.Rate), l.lim.Burst)}
		l.peers[peer] = st
	}
	st.lastSeen = now
	if st.inFlight >= l.lim.MaxInFlight {
		return nil, l.reject(st, peer, now, "concurrency", time.Duration(float64(time.Second)/l.lim.Rate))
	}
	if !st.bucket.AllowN(now, 1) {
		wait := time.Duration((1 - st.bucket.TokensAt(now)) / l.lim.Rate * float64(time.Second))
		return nil, l.reject(st, peer, now, "rate", wait)
	}
	st.inFlight++
	st.rejected.admitted(now)
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			defer l.mu.Unlock()
			st.inFlight--
			st.lastSeen = l.now()
		})
	}, nil
}

func (l *peerLimiter) reject(st *peerState, peer string, now time.Time, kind string, retryAfter time.Duration) error {
	if n, ok := st.rejected.note(now); ok {
		l.log.Warn("federation: peer over its limit; rejecting its requests", "peer", peer, "limit", kind, "rejected", n,
			"max_in_flight", l.lim.MaxInFlight, "rate", l.lim.Rate, "burst", l.lim.Burst)
	}
	return mxhttp.LimitExceeded(retryAfter, "too many requests (%s limit)", kind)
}

// sweep forgets peers idle for IdleAfter, at most every IdleAfter/2, so the
// map holds only peers seen lately even if no new peer ever fills it.
func (l *peerLimiter) sweep(now time.Time) {
	if now.Sub(l.lastSweep) < l.lim.IdleAfter/2 {
		return
	}
	l.lastSweep = now
	for p, st := range l.peers {
		if st.inFlight == 0 && now.Sub(st.lastSeen) >= l.lim.IdleAfter {
			delete(l.peers, p)
		}
	}
}

// evictOne forgets the idle peer seen longest ago, reporting false if every
// peer has requests in flight (their counts must not be lost). The evicted
// peer starts again with a full bucket: only many identities at once could
// use that, and libp2p's connection limits bound how many can be connected.
func (l *peerLimiter) evictOne() bool {
	var oldest string
	var at time.Time
	for p, st := range l.peers {
		if st.inFlight == 0 && (oldest == "" || st.lastSeen.Before(at)) {
			oldest, at = p, st.lastSeen
		}
	}
	if oldest == "" {
		return false
	}
	delete(l.peers, oldest)
	return true
}

// tracked is how many peers have state (for tests).
func (l *peerLimiter) tracked() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.peers)
}

// admit applies the per-peer limits to r, keyed by its authenticated
// transport peer, then the global ones (globallimits.go), before anything
// expensive happens. Requests without one
// are refused with 403 on the authenticated endpoints (they could never
// pass the origin check, so their signature is not worth verifying) and let
// through, unlimited, on the two open ones (/key/v2/server and /version) and
// unknown paths. It reports false when it has answered r itself; otherwise
// the caller calls release when done.
func (h *handler) admit(w http.ResponseWriter, r *http.Request) (release func(), ok bool) {
	peer, known := "", false
	if h.peerOf != nil {
		peer, known = h.peerOf(r)
	}
	if !known {
		open := r.URL.Path == keyServerPath || r.URL.Path == versionPath || !strings.HasPrefix(r.URL.Path, federationPrefix)
		if !open {
			h.fail(w, r, mxhttp.Forbidden("request did not come from an authenticated peer"))
			return nil, false
		}
		return func() {}, true
	}
	releasePeer, err := h.limits.admit(peer)
	if err != nil {
		h.fail(w, r, err)
		return nil, false
	}
	releaseGlobal, err := h.global.admit(peer)
	if err != nil {
		releasePeer()
		h.fail(w, r, err)
		return nil, false
	}
	return func() {
		releaseGlobal()
		releasePeer()
	}, true
}
