package urlpreview

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"syscall"
)

// maxHeaderBytes bounds a response's headers.
const maxHeaderBytes = 64 << 10

// userAgent names the fetcher to the sites it visits.
const userAgent = "edgenode-urlpreview (Matrix homeserver; link previews)"

// newClient returns the HTTP client that fetches pages: it dials only
// addresses opts.AllowAddr allows, uses no proxy from the environment (a
// proxy would do the dialling, unchecked), keeps no idle connections, and
// follows at most opts.MaxRedirects redirects, to http or https only.
func newClient(opts Options) *http.Client {
	d := &dialer{allow: opts.AllowAddr, net: net.Dialer{Timeout: opts.Timeout}}
	// Control runs on every socket just before it connects, with the
	// address actually dialled: a second check, after the resolver's, that
	// holds whatever path the address took to get here.
	d.net.Control = d.control
	tr := &http.Transport{
		Proxy:                  nil,
		DialContext:            d.dialContext,
		TLSHandshakeTimeout:    opts.Timeout,
		ResponseHeaderTimeout:  opts.Timeout,
		MaxResponseHeaderBytes: maxHeaderBytes,
		DisableKeepAlives:      true,
	}
	return &http.Client{
		Transport: tr,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) > opts.MaxRedirects {
				return fmt.Errorf("%w: more than %d redirects", ErrFetch, opts.MaxRedirects)
			}
			// Each hop's address is checked when it is dialled.
			return checkURL(req.URL)
		},
	}
}

// dialer resolves a host itself and dials only the addresses allow
// accepts, so a name that resolves to an internal address, at any hop of a
// redirect or on any lookup (DNS rebinding), is refused.
type dialer struct {
	allow func(netip.Addr) bool
	net   net.Dialer
}

func (d *dialer) dialContext(ctx context.Context, network, address string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadURL, err)
	}
	var ips []netip.Addr
	if ip, err := netip.ParseAddr(host); err == nil {
		ips = []netip.Addr{ip}
	} else if ips, err = net.DefaultResolver.LookupNetIP(ctx, "ip", host); err != nil {
		return nil, fmt.Errorf("%w: resolve %s: %w", ErrFetch, host, err)
	}
	var errs []error
	for _, ip := range ips {
		if !d.allow(ip) {
			errs = append(errs, fmt.Errorf("%w: %s resolves to %s", ErrForbidden, host, ip))
			continue
		}
		c, err := d.net.DialContext(ctx, network, net.JoinHostPort(ip.String(), port))
		if err == nil {
			return c, nil
		}
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		return nil, fmt.Errorf("%w: %s has no address", ErrFetch, host)
	}
	return nil, errors.Join(errs...)
}

// control refuses a socket about to connect to an address allow does not
// accept.
func (d *dialer) control(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil || !d.allow(ap.Addr()) {
		return fmt.Errorf("%w: %s", ErrForbidden, address)
	}
	return nil
}

// fetch fetches u and makes its preview, holding one of the concurrency
// slots throughout; if none is free it fails at once with ErrBusy.
func (p *Previewer) fetch(ctx context.Context, u *url.URL) (Preview, error) {
	select {
	case p.slots <- struct{}{}:
		defer func() { <-p.slots }()
	default:
		return Preview{}, ErrBusy
	}
	ctx, cancel := context.WithTimeout(ctx, p.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return Preview{}, fmt.Errorf("%w: %w", ErrBadURL, err)
	}
	req.Header.Set("User-Agent", userAgent)
	req.Header.Set("Accept", "text/html,application/xhtml+xml;q=0.9,*/*;q=0.1")
	resp, err := p.client.Do(req)
	if err != nil {
		return Preview{}, classify(ctx, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return Preview{}, fmt.Errorf("%w: status %d", ErrFetch, resp.StatusCode)
	}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if mt != "text/html" && mt != "application/xhtml+xml" {
		// Not a page: nothing to say about it (the spec allows an empty
		// preview). Images would need the media store; see the package doc.
		return Preview{}, nil
	}
	// Read no more than the limit; the rest is never read, and closing the
	// body drops the connection.
	pv, err := parseHTML(io.LimitReader(resp.Body, p.opts.MaxHTMLBytes))
	if err != nil {
		return Preview{}, classify(ctx, err)
	}
	return pv, nil
}

// classify makes a fetch error one of the package's errors, keeping its
// cause.
func classify(ctx context.Context, err error) error {
	switch {
	case errors.Is(err, ErrForbidden), errors.Is(err, ErrBadURL), errors.Is(err, ErrFetch):
		return err
	case ctx.Err() != nil:
		return fmt.Errorf("%w: no complete answer in time: %w", ErrFetch, err)
	default:
		return fmt.Errorf("%w: %w", ErrFetch, err)
	}
}
