package clientapi

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/edgenode/edgenode/internal/mxhttp"
	"github.com/edgenode/edgenode/node/core"
)

// TestRegisterLimiterOverall: clients on many addresses (a LAN node's, or
// one host's many IPv6 addresses) together get RegistrationOverallFactor
// times one address's limit, and no more.
func TestRegisterLimiterOverall(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	cfg := core.RateLimit{Burst: 2, Every: time.Minute}
	l := newRegisterLimiter(cfg, func() time.Time { return now })
	from := func(i int) *http.Request {
		r := httptest.NewRequest("POST", "/_matrix/client/v3/register", nil)
		r.RemoteAddr = fmt.Sprintf("[2001:db8::%x]:40000", i)
		return r
	}
	overall := cfg.Burst * core.RegistrationOverallFactor
	for i := range overall {
		if err := l.take(from(i)); err != nil {
			t.Fatalf("registration %d from its own address: %v", i, err)
		}
	}
	var mxErr *mxhttp.Error
	if err := l.take(from(overall)); !errors.As(err, &mxErr) || mxErr.Status != http.StatusTooManyRequests || mxErr.Code != "M_LIMIT_EXCEEDED" {
		t.Fatalf("registration past the overall burst: %v, want 429 M_LIMIT_EXCEEDED", err)
	}
	now = now.Add(cfg.Every / core.RegistrationOverallFactor)
	if err := l.take(from(overall)); err != nil {
		t.Fatalf("after the overall refill: %v", err)
	}
	if len(l.buckets.m) > maxRegisterBuckets {
		t.Errorf("%d address buckets, bound %d", len(l.buckets.m), maxRegisterBuckets)
	}
}

// TestRegisterLimiterBounded: however many addresses register, the limiter
// remembers at most maxRegisterBuckets of them.
func TestRegisterLimiterBounded(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	l := newRegisterLimiter(core.RateLimit{Burst: 1000, Every: time.Hour}, func() time.Time { return now })
	for i := range maxRegisterBuckets + 100 {
		r := httptest.NewRequest("POST", "/_matrix/client/v3/register", nil)
		r.RemoteAddr = fmt.Sprintf("[2001:db8::%x]:40000", i)
		if err := l.take(r); err != nil {
			t.Fatalf("registration %d: %v", i, err)
		}
	}
	if len(l.buckets.m) > maxRegisterBuckets {
		t.Errorf("%d address buckets, bound %d", len(l.buckets.m), maxRegisterBuckets)
	}
}
