package clientapi

import (
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/edgenode/edgenode/internal/mxhttp"
	"github.com/edgenode/edgenode/node"
	"golang.org/x/time/rate"
)

// maxLoginBuckets bounds how many users and addresses the login limiter
// remembers. Only wrong passwords make entries, and a bucket back at its
// burst carries no state, so this many is room for any honest use.
const maxLoginBuckets = 4096

// loginLimiter holds back password guessing at POST /login (the spec marks
// /login rate-limited): each wrong password takes a token from the bucket
// of the user it named and from that of the client's address, and a login
// whose user or address has no token left is refused with 429
// M_LIMIT_EXCEEDED before its password is checked, so a guesser cannot
// tell a right guess from a wrong one while held back. Successful logins
// take nothing. The per-address bucket matters most on loopback, where a
// web page in the device's browser and the owner's app share 127.0.0.1.
type loginLimiter struct {
	limit rate.Limit
	burst int
	every time.Duration

	mu      sync.Mutex
	buckets map[string]*rate.Limiter
}

func newLoginLimiter(cfg node.RateLimit) *loginLimiter {
	if cfg.Burst <= 0 {
		cfg.Burst = node.DefaultLoginFailureBurst
	}
	if cfg.Every <= 0 {
		cfg.Every = node.DefaultLoginFailureEvery
	}
	return &loginLimiter{
		limit: rate.Every(cfg.Every), burst: cfg.Burst, every: cfg.Every,
		buckets: map[string]*rate.Limiter{},
	}
}

// loginKeys are the buckets a login attempt counts against: the user it
// names (case-folded, with or without @ and server name) and the client's
// address.
func loginKeys(r *http.Request, user string) []string {
	local := strings.ToLower(strings.TrimPrefix(user, "@"))
	local, _, _ = strings.Cut(local, ":")
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	return []string{"user " + local, "addr " + host}
}

// check refuses an attempt while any of its buckets is empty, saying when
// the emptiest one has a token again.
func (l *loginLimiter) check(keys []string) error {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	var wait time.Duration
	for _, k := range keys {
		if b := l.buckets[k]; b != nil {
			if tokens := b.TokensAt(now); tokens < 1 {
				wait = max(wait, time.Duration((1-tokens)*float64(l.every)))
			}
		}
	}
	if wait > 0 {
		return mxhttp.LimitExceeded(wait, "too many failed logins; try again later")
	}
	return nil
}

// failed takes a token from each of the attempt's buckets.
func (l *loginLimiter) failed(keys []string) {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, k := range keys {
		b := l.buckets[k]
		if b == nil {
			if len(l.buckets) >= maxLoginBuckets {
				l.evict(now)
			}
			b = rate.NewLimiter(l.limit, l.burst)
			l.buckets[k] = b
		}
		b.AllowN(now, 1)
	}
}

// evict makes room for a bucket: it drops every bucket that has refilled
// (they hold nothing) or, if none has, the fullest one, which loses the
// least of what is being held back.
func (l *loginLimiter) evict(now time.Time) {
	fullest, most := "", -1.0
	for k, b := range l.buckets {
		tokens := b.TokensAt(now)
		if tokens >= float64(l.burst) {
			delete(l.buckets, k)
			continue
		}
		if tokens > most {
			fullest, most = k, tokens
		}
	}
	if len(l.buckets) >= maxLoginBuckets {
		delete(l.buckets, fullest)
	}
}
