package clientapi_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/edgenode/edgenode/app"
	"github.com/edgenode/edgenode/internal/testnet"
	"github.com/edgenode/edgenode/internal/testnode"
	"github.com/edgenode/edgenode/node/core"
)

// TestRegisterRateLimit: registrations beyond the burst are refused with
// 429 M_LIMIT_EXCEEDED and retry_after_ms before any account is written;
// the first request of the user-interactive auth and /register/available
// cost nothing; a refill lets registration through again; a negative
// burst turns the limit off.
func TestRegisterRateLimit(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		limit   core.RateLimit
		allowed int           // registrations that pass at once
		every   time.Duration // refill of one registration; 0: no limit
	}{
		{name: "default", allowed: core.DefaultRegistrationBurst, every: core.DefaultRegistrationEvery},
		{name: "configured", limit: core.RateLimit{Burst: 3, Every: 10 * time.Minute}, allowed: 3, every: 10 * time.Minute},
		{name: "off", limit: core.RateLimit{Burst: -1}, allowed: core.DefaultRegistrationBurst + 5},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			clock := testnet.NewClock(time.Now())
			n := testnode.Start(t, testnode.Options{Configure: func(c *app.Config) {
				c.Node.Registrations = tc.limit
				c.Node.Clock = clock.Now
			}})
			register := func(name string) testnode.Response {
				return n.Do("POST", v3+"/register", "", map[string]any{
					"username": name, "password": "pw-" + name, "auth": map[string]any{"type": "m.login.dummy"},
				})
			}
			// Neither learning the flows nor asking for a name is charged.
			for i := range tc.allowed + 5 {
				res := n.Do("POST", v3+"/register", "", map[string]any{"username": fmt.Sprintf("flows%d", i), "password": "pw"})
				expect(t, res, http.StatusUnauthorized, "")
				expect(t, n.Do("GET", v3+"/register/available?username=free", "", nil), http.StatusOK, "")
			}
			for i := range tc.allowed {
				expect(t, register(fmt.Sprintf("user%d", i)), http.StatusOK, "")
			}
			if tc.every == 0 {
				return
			}
			over := register("over")
			expect(t, over, http.StatusTooManyRequests, "M_LIMIT_EXCEEDED")
			ms, _ := over.Body["retry_after_ms"].(float64)
			if ms <= 0 || time.Duration(ms)*time.Millisecond > tc.every {
				t.Errorf("retry_after_ms %v, want in (0, %d]: %s", over.Body["retry_after_ms"], tc.every.Milliseconds(), over.Raw)
			}
			// No account was made: the name is free and nobody logs in with it.
			avail := n.Do("GET", v3+"/register/available?username=over", "", nil)
			expect(t, avail, http.StatusOK, "")
			login := n.Do("POST", v3+"/login", "", map[string]any{"type": "m.login.password", "user": "over", "password": "pw-over"})
			expect(t, login, http.StatusForbidden, "M_FORBIDDEN")

			clock.Advance(tc.every)
			expect(t, register("over"), http.StatusOK, "")
			expect(t, register("again"), http.StatusTooManyRequests, "M_LIMIT_EXCEEDED")
		})
	}
}
