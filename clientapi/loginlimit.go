package clientapi

import (
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/edgenode/edgenode/internal/mxhttp"
	"github.com/edgenode/edgenode/node/core"
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
// (Why not golang.org/x/time/rate: tokenbucket.go.)
type loginLimiter struct {
	mu      sync.Mutex
	buckets bucketSet
}

func newLoginLimiter(cfg core.RateLimit) *loginLimiter {
	if cfg.Burst <= 0 {
		cfg.Burst = core.DefaultLoginFailureBurst
	}
	if cfg.Every <= 0 {
		cfg.Every = core.DefaultLoginFailureEvery
	}
	return &loginLimiter{buckets: newBucketSet(bucketRate{burst: float64(cfg.Burst), every: cfg.Every}, maxLoginBuckets)}
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
		wait = max(wait, l.buckets.wait(k, now))
	}
	if wait > 0 {
		return nil, mxhttp.LimitExceeded(wait, "too many failed logins; try again later")
	}
	for _, k := range keys {
		l.buckets.take(k, now)
	}
	return func(wrong bool) {
		if wrong {
			return
		}
		at := time.Now()
		l.mu.Lock()
		defer l.mu.Unlock()
		for _, k := range keys {
			l.buckets.giveBack(k, at)
		}
	}, nil
}
