package testnet

import (
	"errors"
	"net/http"
	"net/url"
)

// Routes is an http.RoundTripper for federation tests that run without
// libp2p: a request addressed to a server name in the map goes to the
// listener at its base URL (an httptest server on 127.0.0.1), as the
// libp2p transport sends it to the peer of that name. A server name not in
// the map is an error, as an unreachable peer is.
type Routes map[string]string

// RoundTrip sends req to the listener of its host's server name.
func (r Routes) RoundTrip(req *http.Request) (*http.Response, error) {
	base, ok := r[req.URL.Host]
	if !ok {
		return nil, errors.New("unknown server " + req.URL.Host)
	}
	u, err := url.Parse(base)
	if err != nil {
		return nil, err
	}
	out := req.Clone(req.Context())
	out.URL.Scheme, out.URL.Host, out.Host = "http", u.Host, u.Host
	return http.DefaultTransport.RoundTrip(out)
}
