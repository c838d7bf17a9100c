package federation

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"time"
)

// Bounds on waiting out a remote's 429 inside one request.
const (
	// limitedRetries is how many times a request answered 429 is sent again.
	limitedRetries = 3
	// limitedMaxWait is the longest retry_after_ms waited out inside a
	// request; a longer one is the caller's to handle (the sender waits it
	// out between transactions).
	limitedMaxWait = 10 * time.Second
)

// retryLimited is a RoundTripper that waits out a 429 M_LIMIT_EXCEEDED and
// sends the request again, as the spec asks of a rate-limited client. A
// node's one-off requests (make_join, send_join, state, get_missing_events,
// queries) would otherwise fail on a busy peer's first 429: several servers
// joining one room at once meet its limit for strangers, and each join
// failed with a 502. A request is sent again only if its body can be read
// again (GetBody) and within limitedRetries and limitedMaxWait, bounded by
// its context.
type retryLimited struct{ next http.RoundTripper }

// RoundTrip implements http.RoundTripper.
func (t retryLimited) RoundTrip(req *http.Request) (*http.Response, error) {
	for try := 0; ; try++ {
		res, err := t.next.RoundTrip(req)
		if err != nil || res.StatusCode != http.StatusTooManyRequests || try == limitedRetries || (req.Body != nil && req.GetBody == nil) {
			return res, err
		}
		wait, res := retryAfter(res)
		if wait <= 0 || wait > limitedMaxWait {
			return res, nil
		}
		_ = res.Body.Close()
		timer := time.NewTimer(wait)
		select {
		case <-timer.C:
		case <-req.Context().Done():
			timer.Stop()
			return nil, req.Context().Err()
		}
		if req.GetBody != nil {
			body, err := req.GetBody()
			if err != nil {
				return nil, err
			}
			req = req.Clone(req.Context())
			req.Body = body
		}
	}
}

// retryAfter reads the wait a 429 asks for (retry_after_ms, 0 if none) and
// returns the response with its body readable again.
func retryAfter(res *http.Response) (time.Duration, *http.Response) {
	raw, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	_ = res.Body.Close()
	res.Body = io.NopCloser(bytes.NewReader(raw))
	var limited struct {
		RetryAfterMS int64 `json:"retry_after_ms"`
	}
	if json.Unmarshal(raw, &limited) != nil || limited.RetryAfterMS <= 0 {
		return 0, res
	}
	return time.Duration(min(limited.RetryAfterMS, int64(time.Hour/time.Millisecond))) * time.Millisecond, res
}
