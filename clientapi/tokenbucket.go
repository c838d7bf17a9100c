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

// bucketSet is a bounded set of token buckets of one rate, by key. A key
// without a bucket has a full one; only keys that have spent are kept.
type bucketSet struct {
	rate  bucketRate
	limit int
	m     map[string]*tokenBucket
}

func newBucketSet(rate bucketRate, limit int) bucketSet {
	return bucketSet{rate: rate, limit: limit, m: map[string]*tokenBucket{}}
}

// wait is how long until key's bucket has a token at now; zero if it has.
func (s bucketSet) wait(key string, now time.Time) time.Duration {
	if b := s.m[key]; b != nil {
		return s.rate.wait(b, now)
	}
	return 0
}

// take spends a token of key's bucket at now, making room for the bucket
// first if the set is full.
func (s bucketSet) take(key string, now time.Time) {
	b := s.m[key]
	if b == nil {
		if len(s.m) >= s.limit {
			s.evict(now)
		}
		b = &tokenBucket{tokens: s.rate.burst, at: now}
		s.m[key] = b
	}
	b.tokens, b.at = s.rate.level(b, now)-1, now
}

// giveBack returns a token spent from key's bucket, if it is still kept.
func (s bucketSet) giveBack(key string, at time.Time) {
	if b := s.m[key]; b != nil {
		b.tokens, b.at = min(s.rate.burst, s.rate.level(b, at)+1), at
	}
}

// evict drops every bucket that has refilled (they hold nothing) or, if
// none has and the set is full, the fullest one, which loses the least of
// what is being held back.
func (s bucketSet) evict(now time.Time) {
	fullest, most := "", -1.0
	for k, b := range s.m {
		lv := s.rate.level(b, now)
		if lv >= s.rate.burst {
			delete(s.m, k)
			continue
		}
		if lv > most {
			fullest, most = k, lv
		}
	}
	if len(s.m) >= s.limit {
		delete(s.m, fullest)
	}
}
