package urlpreview

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"golang.org/x/sync/singleflight"
)

// Defaults for Options' zero fields.
const (
	DefaultTimeout      = 10 * time.Second
	DefaultMaxHTMLBytes = 1 << 20
	DefaultMaxRedirects = 5
	DefaultConcurrency  = 4
	DefaultCacheEntries = 256
	DefaultCacheTTL     = time.Hour
)

// maxURLLen bounds the URL a client may ask for; longer ones are refused
// before anything is fetched (and would be cache keys otherwise).
const maxURLLen = 4096

// Errors Preview returns, wrapped; the client API turns them into Matrix
// errors.
var (
	// ErrBadURL is a URL that is not an absolute http or https URL.
	ErrBadURL = errors.New("urlpreview: not an http or https URL")
	// ErrForbidden is a URL whose host (or a redirect's) resolves to an
	// address that is not globally routable.
	ErrForbidden = errors.New("urlpreview: address not allowed")
	// ErrBusy means the node is already fetching as many previews as it
	// allows at once.
	ErrBusy = errors.New("urlpreview: too many previews being fetched")
	// ErrFetch is a page that could not be fetched: no answer, an error
	// status, too many redirects or the time limit.
	ErrFetch = errors.New("urlpreview: could not fetch the page")
)

// Options configures a Previewer; zero fields take the defaults above.
type Options struct {
	// Timeout bounds one fetch: connecting, redirects, headers and body.
	Timeout time.Duration
	// MaxHTMLBytes is how much of a page is read; the rest is not.
	MaxHTMLBytes int64
	// MaxRedirects bounds the redirects followed.
	MaxRedirects int
	// Concurrency bounds the fetches in flight, over all users.
	Concurrency int
	// CacheEntries and CacheTTL bound the cache of previews.
	CacheEntries int
	CacheTTL     time.Duration
	// AllowAddr decides which addresses may be dialled; nil is Allowed.
	// Only tests set it, to let a server on loopback stand in for the web.
	AllowAddr func(netip.Addr) bool
	// Clock is the cache's clock; nil is time.Now.
	Clock func() time.Time
}

// Preview is what a page says about itself.
type Preview struct {
	// Title is og:title, else the page's <title>.
	Title string `json:"og:title,omitempty"`
	// Description is og:description, else the description meta tag.
	Description string `json:"og:description,omitempty"`
}

// Previewer fetches and caches previews. It is safe for concurrent use.
type Previewer struct {
	opts   Options
	client *http.Client
	slots  chan struct{}
	cache  *cache
	group  singleflight.Group
}

// New returns a Previewer with opts.
func New(opts Options) *Previewer {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.MaxHTMLBytes <= 0 {
		opts.MaxHTMLBytes = DefaultMaxHTMLBytes
	}
	if opts.MaxRedirects <= 0 {
		opts.MaxRedirects = DefaultMaxRedirects
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = DefaultConcurrency
	}
	if opts.CacheEntries <= 0 {
		opts.CacheEntries = DefaultCacheEntries
	}
	if opts.CacheTTL <= 0 {
		opts.CacheTTL = DefaultCacheTTL
	}
	if opts.AllowAddr == nil {
		opts.AllowAddr = Allowed
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	return &Previewer{
		opts:   opts,
		client: newClient(opts),
		slots:  make(chan struct{}, opts.Concurrency),
		cache:  newCache(opts.CacheEntries, opts.CacheTTL),
	}
}

// ParseURL checks that raw is an absolute http or https URL and returns it
// without its fragment (which the server never sees), as the cache key.
func ParseURL(raw string) (*url.URL, error) {
	if len(raw) > maxURLLen {
		return nil, fmt.Errorf("%w: longer than %d bytes", ErrBadURL, maxURLLen)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadURL, err)
	}
	if err := checkURL(u); err != nil {
		return nil, err
	}
	u.Fragment, u.RawFragment = "", ""
	return u, nil
}

// checkURL refuses what is not an http or https URL with a host, and URLs
// carrying credentials, which the node has no business sending anywhere.
func checkURL(u *url.URL) error {
	switch strings.ToLower(u.Scheme) {
	case "http", "https":
	default:
		return fmt.Errorf("%w: scheme %q", ErrBadURL, u.Scheme)
	}
	if u.Hostname() == "" {
		return fmt.Errorf("%w: no host", ErrBadURL)
	}
	if u.User != nil {
		return fmt.Errorf("%w: credentials in the URL", ErrBadURL)
	}
	return nil
}

// Cached returns the cached preview of the URL raw, if there is one still
// fresh. The client API serves these without charging the user's rate
// limit.
func (p *Previewer) Cached(raw string) (Preview, bool) {
	u, err := ParseURL(raw)
	if err != nil {
		return Preview{}, false
	}
	return p.cache.get(u.String(), p.opts.Clock())
}

// Preview returns the preview of the URL raw, from the cache or fetched.
// Requests for the same URL at the same time share one fetch, which runs
// to its own time limit even if the request that started it goes away.
func (p *Previewer) Preview(ctx context.Context, raw string) (Preview, error) {
	u, err := ParseURL(raw)
	if err != nil {
		return Preview{}, err
	}
	key := u.String()
	if pv, ok := p.cache.get(key, p.opts.Clock()); ok {
		return pv, nil
	}
	ch := p.group.DoChan(key, func() (any, error) {
		pv, err := p.fetch(context.WithoutCancel(ctx), u)
		if err == nil {
			p.cache.put(key, pv, p.opts.Clock())
		}
		return pv, err
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return Preview{}, r.Err
		}
		return r.Val.(Preview), nil
	case <-ctx.Done():
		return Preview{}, ctx.Err()
	}
}
