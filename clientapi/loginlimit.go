package clientapi

import (
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/edgenode/edgenode/internal/mxhttp"
	"github.com/edgenode/edgenode/node"
)

// maxLoginBuckets bounds how many users and addresses the login limiter
// remembers. A bucket back at its burst carries no state and is dropped
// first, so this many is room for any honest use.
const maxLoginBuckets = 4096

// loginLimiter holds back password guessing at POST /login (the spec marks
// /login rate-limited): each wrong password takes a token from the bucket
// of the user it named and from that of the client's address, and a login
// whose user or address has no token left is refused with 429
// M_LIMIT_EXCEEDED before its password is checked, so a guesser cannot
// tell a right guess from a wrong one while held back. Successful logins
// cost nothing. The per-address bucket matters most on loopback, where a
// web page in the device's browser and the owner's app share 127.0.0.1.
//
// The buckets are kept here rather than in golang.org/x/time/rate's
// Limiter because an attempt is charged before its password is checked
// and given back after, and a Limiter cannot give back a token once its
// reservation's time has passed.
type loginLimiter struct {
	burst float64
	every time.Duration

	mu      sync.Mutex
	buckets map[string]*loginBucket
}

// loginBucket is a token bucket: tokens as of at.
type loginBucket struct {
	tokens float64
	at     time.Time
}

func newLoginLimiter(cfg node.RateLimit) *loginLimiter {
	if cfg.Burst <= 0 {
		cfg.Burst = node.DefaultLoginFailureBurst
	}
	if cfg.Every <= 0 {
		cfg.Every = node.DefaultLoginFailureEvery
	}
	return &loginLimiter{burst: float64(cfg.Burst), every: cfg.Every, buckets: map[string]*loginBucket{}}
}

// level is b's tokens at now, refilled since b.at up to the burst.
func (l *loginLimiter) level(b *loginBucket, now time.Time) float64 {
	return min(l.burst, b.tokens+float64(now.Sub(b.at))/float64(l.every))
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

// begin charges a login attempt to each of its buckets before the
// password is checked, so that many attempts sent at once cannot all pass
// while the first ones are still being checked. It refuses the attempt,
// charging nothing, if any bucket has less than a token, and says when the
// emptiest has one again. Otherwise the caller must call done with whether
// the password was wrong: an attempt that was not is given back.
func (l *loginLimiter) begin(keys []string) (done func(wrong bool), err error) {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	var wait time.Duration
	for _, k := range keys {
		if b := l.buckets[k]; b != nil {
			if lv := l.level(b, now); lv < 1 {
				wait = max(wait, time.Duration((1-lv)*float64(l.every)))
			}
		}
	}
	if wait > 0 {
		return nil, mxhttp.LimitExceeded(wait, "too many failed logins; try again later")
	}
	for _, k := range keys {
		b := l.buckets[k]
		if b == nil {
			if len(l.buckets) >= maxLoginBuckets {
				l.evict(now)
			}
			b = &loginBucket{tokens: l.burst, at: now}
			l.buckets[k] = b
		}
		b.tokens, b.at = l.level(b, now)-1, now
	}
	return func(wrong bool) {
		if wrong {
			return
		}
		at := time.Now()
		l.mu.Lock()
		defer l.mu.Unlock()
		for _, k := range keys {
			if b := l.buckets[k]; b != nil {
				b.tokens, b.at = min(l.burst, l.level(b, at)+1), at
			}
		}
	}, nil
}

// evict makes room for a bucket: it drops every bucket that has refilled
// (they hold nothing) or, if none has, the fullest one, which loses the
// least of what is being held back.
func (l *loginLimiter) evict(now time.Time) {
	fullest, most := "", -1.0
	for k, b := range l.buckets {
		lv := l.level(b, now)
		if lv >= l.burst {
			delete(l.buckets, k)
			continue
		}
		if lv > most {
			fullest, most = k, lv
		}
	}
	if len(l.buckets) >= maxLoginBuckets {
		delete(l.buckets, fullest)
	}
}
