package clientapi

import "time"

// The login and registration limiters' token buckets. They are kept here
// rather than in golang.org/x/time/rate's Limiter because a login attempt
// is charged before its password is checked and given back after, and a
// Limiter cannot give back a token once its reservation's time has passed.

// tokenBucket is a token bucket: tokens as of at.
type tokenBucket struct {
	tokens float64
	at     time.Time
}

// bucketRate is a token bucket's shape: at most burst tokens, one more
// every every.
type bucketRate struct {
	burst float64
	every time.Duration
}

// level is b's tokens at now, refilled since b.at up to the burst.
func (c bucketRate) level(b *tokenBucket, now time.Time) float64 {
	return min(c.burst, b.tokens+float64(now.Sub(b.at))/float64(c.every))
}

// wait is how long until b has a token at now; zero if it has one.
func (c bucketRate) wait(b *tokenBucket, now time.Time) time.Duration {
	if lv := c.level(b, now); lv < 1 {
		return time.Duration((1 - lv) * float64(c.every))
	}
	return 0
}

// evictBuckets makes room for one more bucket in buckets (bounded by
// limit): it drops every bucket that has refilled (they hold nothing) or,
// if none has and the map is full, the fullest one, which loses the least
// of what is being held back.
func evictBuckets(buckets map[string]*tokenBucket, rate bucketRate, limit int, now time.Time) {
	fullest, most := "", -1.0
	for k, b := range buckets {
		lv := rate.level(b, now)
		if lv >= rate.burst {
			delete(buckets, k)
			continue
		}
		if lv > most {
			fullest, most = k, lv
		}
	}
	if len(buckets) >= limit {
		delete(buckets, fullest)
	}
}
