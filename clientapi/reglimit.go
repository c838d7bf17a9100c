package clientapi

import (
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/edgenode/edgenode/internal/mxhttp"
	"github.com/edgenode/edgenode/node/core"
)

// maxRegisterBuckets bounds how many client addresses the registration
// limiter remembers; a full bucket carries no state and is dropped first.
const maxRegisterBuckets = 1024

// registerLimiter holds back account creation at POST /register (the spec
// marks it rate-limited). The client API sends CORS headers, so any web
// page in a browser on the device can post to it; with open registration
// such a page could create accounts in a loop until the disk is full. Each
// attempt that would create an account (the final step of the
// user-interactive auth, not the first request that only learns the flows)
// takes a token from its client address's bucket and from the overall
// bucket before anything is written, and an attempt either has none left
// for is refused with 429 M_LIMIT_EXCEEDED. On a node that only listens
// on loopback every client is 127.0.0.1, so the address bucket is in
// effect the overall one; the overall bucket, core.RegistrationOverallFactor
// times larger, bounds a LAN node's clients together.
//
// Tokens are not given back when the registration then fails (a name
// taken by a concurrent request): such attempts are rare for an honest
// client and still cost the node work.
type registerLimiter struct {
	off     bool
	overall bucketRate
	now     func() time.Time

	mu      sync.Mutex
	all     tokenBucket
	buckets bucketSet // by client address
}

// newRegisterLimiter makes the limiter cfg describes (core.Config's
// Registrations); clock is the node's clock, nil for time.Now.
func newRegisterLimiter(cfg core.RateLimit, clock func() time.Time) *registerLimiter {
	if clock == nil {
		clock = time.Now
	}
	if cfg.Burst < 0 {
		return &registerLimiter{off: true, now: clock}
	}
	if cfg.Burst == 0 {
		cfg.Burst = core.DefaultRegistrationBurst
	}
	if cfg.Every <= 0 {
		cfg.Every = core.DefaultRegistrationEvery
	}
	l := &registerLimiter{
		buckets: newBucketSet(bucketRate{burst: float64(cfg.Burst), every: cfg.Every}, maxRegisterBuckets),
		overall: bucketRate{burst: float64(cfg.Burst * core.RegistrationOverallFactor), every: max(cfg.Every/core.RegistrationOverallFactor, 1)},
		now:     clock,
	}
	l.all = tokenBucket{tokens: l.overall.burst, at: clock()}
	return l
}

// take charges one registration from r's client address, or refuses it,
// charging nothing, with 429 M_LIMIT_EXCEEDED saying when to retry.
func (l *registerLimiter) take(r *http.Request) error {
	if l.off {
		return nil
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if wait := max(l.overall.wait(&l.all, now), l.buckets.wait(host, now)); wait > 0 {
		return mxhttp.LimitExceeded(wait, "too many registrations; try again later")
	}
	l.buckets.take(host, now)
	l.all.tokens, l.all.at = l.overall.level(&l.all, now)-1, now
	return nil
}
