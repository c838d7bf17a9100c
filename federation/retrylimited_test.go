package federation

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestRetryLimited: a request answered 429 with a short retry_after_ms is
// sent again, body and all, until it is answered; one told to wait long, or
// limited more often than the bound, gets the 429.
func TestRetryLimited(t *testing.T) {
	for _, tc := range []struct {
		name       string
		limited    int32 // 429s before a 200
		retryAfter int   // ms
		wantStatus int
		wantTries  int32
	}{
		{"answered at once", 0, 10, http.StatusOK, 1},
		{"limited twice", 2, 10, http.StatusOK, 3},
		{"limited past the bound", limitedRetries + 1, 10, http.StatusTooManyRequests, limitedRetries + 1},
		{"asked to wait too long", 1, int(limitedMaxWait/time.Millisecond) + 1, http.StatusTooManyRequests, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var tries atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				if string(body) != `{"x":1}` {
					t.Errorf("try %d: body %q", tries.Load()+1, body)
				}
				if tries.Add(1) <= tc.limited {
					w.WriteHeader(http.StatusTooManyRequests)
					fmt.Fprintf(w, `{"errcode":"M_LIMIT_EXCEEDED","error":"busy","retry_after_ms":%d}`, tc.retryAfter)
					return
				}
				fmt.Fprint(w, `{}`)
			}))
			defer srv.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, "PUT", srv.URL, strings.NewReader(`{"x":1}`))
			if err != nil {
				t.Fatal(err)
			}
			res, err := (&http.Client{Transport: retryLimited{http.DefaultTransport}}).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != tc.wantStatus || tries.Load() != tc.wantTries {
				t.Fatalf("status %d after %d tries (%s), want %d after %d", res.StatusCode, tries.Load(), body, tc.wantStatus, tc.wantTries)
			}
			if res.StatusCode == http.StatusTooManyRequests && !strings.Contains(string(body), "M_LIMIT_EXCEEDED") {
				t.Fatalf("the 429's body is lost: %q", body)
			}
		})
	}
}
