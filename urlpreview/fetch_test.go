package urlpreview_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgenode/edgenode/urlpreview"
)

// page is an HTML page with OpenGraph tags.
const page = `<!doctype html><html><head>
<title>Fallback title</title>
<meta property="og:title" content="Edge &amp; node">
<meta property="og:description" content="A Matrix homeserver on a phone">
</head><body><p>hello</p></body></html>`

// loopback is the test servers' address, which tests allow on top of the
// default policy; it stands in for a public web server.
var loopback = netip.MustParseAddr("127.0.0.1")

// allowLoopback is the default policy plus 127.0.0.1 (only).
func allowLoopback(ip netip.Addr) bool { return ip == loopback || urlpreview.Allowed(ip) }

// server serves h on 127.0.0.1 and counts the requests it gets.
func server(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var hits atomic.Int64
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		h(w, r)
	}))
	t.Cleanup(s.Close)
	return s, &hits
}

func servePage(body string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, body)
	}
}

func TestPreviewParsesOpenGraph(t *testing.T) {
	s, hits := server(t, servePage(page))
	p := urlpreview.New(urlpreview.Options{AllowAddr: allowLoopback})
	pv, err := p.Preview(context.Background(), s.URL+"/post#frag")
	if err != nil {
		t.Fatal(err)
	}
	want := urlpreview.Preview{Title: "Edge & node", Description: "A Matrix homeserver on a phone"}
	if pv != want {
		t.Fatalf("got %+v, want %+v", pv, want)
	}
	// Cached: the same URL (the fragment aside) is not fetched again.
	if pv, err := p.Preview(context.Background(), s.URL+"/post"); err != nil || pv != want {
		t.Fatalf("second preview: %+v, %v", pv, err)
	}
	if c, ok := p.Cached(s.URL + "/post"); !ok || c != want {
		t.Fatalf("Cached: %+v, %v", c, ok)
	}
	if n := hits.Load(); n != 1 {
		t.Errorf("server got %d requests, want 1", n)
	}
}

func TestPreviewCacheExpires(t *testing.T) {
	s, hits := server(t, servePage(page))
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p := urlpreview.New(urlpreview.Options{AllowAddr: allowLoopback, CacheTTL: time.Minute, Clock: func() time.Time { return now }})
	for range 2 {
		if _, err := p.Preview(context.Background(), s.URL); err != nil {
			t.Fatal(err)
		}
	}
	now = now.Add(time.Minute)
	if _, err := p.Preview(context.Background(), s.URL); err != nil {
		t.Fatal(err)
	}
	if n := hits.Load(); n != 2 {
		t.Errorf("server got %d requests, want 2 (one, then one after expiry)", n)
	}
}

// TestPreviewRefusesLoopbackByDefault: the default policy refuses a real
// server on 127.0.0.1, by address and by a name resolving to it, and the
// server is never contacted.
func TestPreviewRefusesLoopbackByDefault(t *testing.T) {
	s, hits := server(t, servePage(page))
	_, port, _ := net.SplitHostPort(s.Listener.Addr().String())
	p := urlpreview.New(urlpreview.Options{})
	for _, u := range []string{
		s.URL,
		"http://localhost:" + port + "/",
		"http://[::ffff:127.0.0.1]:" + port + "/",
		"http://2130706433:" + port + "/", // 127.0.0.1 as one number, which resolvers may accept
	} {
		_, err := p.Preview(context.Background(), u)
		if !errors.Is(err, urlpreview.ErrForbidden) && !errors.Is(err, urlpreview.ErrFetch) {
			t.Errorf("%s: got %v, want ErrForbidden", u, err)
		}
		if u != "http://2130706433:"+port+"/" && !errors.Is(err, urlpreview.ErrForbidden) {
			t.Errorf("%s: got %v, want ErrForbidden", u, err)
		}
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("server got %d requests, want none", n)
	}
}

func TestPreviewRefusesBadURLs(t *testing.T) {
	p := urlpreview.New(urlpreview.Options{AllowAddr: allowLoopback})
	for _, u := range []string{"", "ftp://example.com/", "file:///etc/passwd", "javascript:alert(1)", "/relative", "http://user:pw@example.com/", "http://" + strings.Repeat("a", 5000)} {
		if _, err := p.Preview(context.Background(), u); !errors.Is(err, urlpreview.ErrBadURL) {
			t.Errorf("%q: got %v, want ErrBadURL", u, err)
		}
	}
}

// TestPreviewRefusesRedirectToLoopback: a redirect from an allowed server
// to one on a loopback address the policy does not allow is refused before
// the second server is contacted.
func TestPreviewRefusesRedirectToLoopback(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Skipf("no 127.0.0.2 on this system: %v", err)
	}
	var internalHits atomic.Int64
	internal := &httptest.Server{Listener: l, Config: &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		internalHits.Add(1)
		servePage(page)(w, r)
	})}}
	internal.Start()
	t.Cleanup(internal.Close)
	_, port, _ := net.SplitHostPort(l.Addr().String())

	for _, target := range []string{internal.URL + "/admin", "http://[::ffff:127.0.0.2]:" + port + "/admin"} {
		public, hits := server(t, func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, target, http.StatusFound)
		})
		p := urlpreview.New(urlpreview.Options{AllowAddr: allowLoopback})
		if _, err := p.Preview(context.Background(), public.URL); !errors.Is(err, urlpreview.ErrForbidden) {
			t.Errorf("redirect to %s: got %v, want ErrForbidden", target, err)
		}
		if hits.Load() != 1 {
			t.Errorf("redirect to %s: the allowed server got %d requests, want 1", target, hits.Load())
		}
	}
	if n := internalHits.Load(); n != 0 {
		t.Errorf("the internal server got %d requests, want none", n)
	}
}

func TestPreviewBoundsRedirects(t *testing.T) {
	s, hits := server(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/again", http.StatusFound)
	})
	p := urlpreview.New(urlpreview.Options{AllowAddr: allowLoopback, MaxRedirects: 3})
	if _, err := p.Preview(context.Background(), s.URL); !errors.Is(err, urlpreview.ErrFetch) {
		t.Fatalf("got %v, want ErrFetch", err)
	}
	if n := hits.Load(); n != 4 {
		t.Errorf("server got %d requests, want 4 (the first and 3 redirects)", n)
	}
}

func TestPreviewRefusesRedirectToOtherScheme(t *testing.T) {
	s, _ := server(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "file:///etc/passwd", http.StatusFound)
	})
	p := urlpreview.New(urlpreview.Options{AllowAddr: allowLoopback})
	if _, err := p.Preview(context.Background(), s.URL); !errors.Is(err, urlpreview.ErrBadURL) {
		t.Fatalf("got %v, want ErrBadURL", err)
	}
}

// TestPreviewCutsOffOversizedBody: a page that never ends is read up to
// the limit and no further: what came before the limit is used, what came
// after is not, and the preview is answered well before the time limit.
func TestPreviewCutsOffOversizedBody(t *testing.T) {
	const limit = 64 << 10
	s, _ := server(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, `<html><head><title>Before the limit</title>`)
		pad := []byte("<!--" + strings.Repeat("x", 16<<10) + "-->")
		for written := 0; ; written += len(pad) {
			if written > 2*limit {
				// Past the limit: a tag the preview must not contain.
				if _, err := fmt.Fprint(w, `<meta property="og:title" content="After the limit">`); err != nil {
					return
				}
			}
			if _, err := w.Write(pad); err != nil {
				return // the fetcher hung up
			}
		}
	})
	p := urlpreview.New(urlpreview.Options{AllowAddr: allowLoopback, MaxHTMLBytes: limit, Timeout: time.Minute})
	pv, err := p.Preview(context.Background(), s.URL)
	if err != nil {
		t.Fatal(err)
	}
	if pv.Title != "Before the limit" {
		t.Fatalf("title %q, want the one before the limit", pv.Title)
	}
}

// TestPreviewTimesOut: a server that sends its headers and then trickles
// nothing is given up on at the time limit.
func TestPreviewTimesOut(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	cases := map[string]http.HandlerFunc{
		"slow headers": func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-release:
			}
		},
		"slow body": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			fmt.Fprint(w, "<html><head>")
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
			case <-release:
			}
		},
	}
	for name, h := range cases {
		t.Run(name, func(t *testing.T) {
			s, _ := server(t, h)
			p := urlpreview.New(urlpreview.Options{AllowAddr: allowLoopback, Timeout: 200 * time.Millisecond})
			start := time.Now()
			_, err := p.Preview(context.Background(), s.URL)
			if !errors.Is(err, urlpreview.ErrFetch) {
				t.Fatalf("got %v, want ErrFetch", err)
			}
			if d := time.Since(start); d > 30*time.Second {
				t.Errorf("gave up after %s", d)
			}
		})
	}
}

func TestPreviewNonHTMLAndErrors(t *testing.T) {
	s, _ := server(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/image":
			w.Header().Set("Content-Type", "image/png")
			fmt.Fprint(w, `<title>not parsed</title>`)
		case "/missing":
			http.NotFound(w, r)
		}
	})
	p := urlpreview.New(urlpreview.Options{AllowAddr: allowLoopback})
	if pv, err := p.Preview(context.Background(), s.URL+"/image"); err != nil || pv != (urlpreview.Preview{}) {
		t.Errorf("image: %+v, %v; want an empty preview", pv, err)
	}
	if _, err := p.Preview(context.Background(), s.URL+"/missing"); !errors.Is(err, urlpreview.ErrFetch) {
		t.Errorf("404: got %v, want ErrFetch", err)
	}
}

// TestPreviewConcurrencyBound: with one slot taken by a fetch in flight, a
// preview of another URL is refused at once with ErrBusy, and a preview of
// the same URL shares the fetch in flight.
func TestPreviewConcurrencyBound(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	s, hits := server(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			entered <- struct{}{}
			<-release
		}
		servePage(page)(w, r)
	})
	p := urlpreview.New(urlpreview.Options{AllowAddr: allowLoopback, Concurrency: 1, Timeout: time.Minute})
	results := make(chan error, 2)
	for range 2 {
		go func() {
			_, err := p.Preview(context.Background(), s.URL+"/slow")
			results <- err
		}()
	}
	<-entered
	if _, err := p.Preview(context.Background(), s.URL+"/other"); !errors.Is(err, urlpreview.ErrBusy) {
		t.Errorf("second URL while the slot is taken: got %v, want ErrBusy", err)
	}
	close(release)
	for range 2 {
		if err := <-results; err != nil {
			t.Errorf("shared fetch: %v", err)
		}
	}
	if _, err := p.Preview(context.Background(), s.URL+"/other"); err != nil {
		t.Errorf("after the slot is free: %v", err)
	}
	if n := hits.Load(); n != 2 {
		// One shared fetch of /slow... unless the second goroutine came after
		// the first finished, when the cache answered it: still one.
		t.Errorf("server got %d requests, want 2", n)
	}
}
