package federation

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestPanicRecovered: a handler bug reached by a peer's request is that
// request's 500 M_UNKNOWN, and the handler goes on serving.
func TestPanicRecovered(t *testing.T) {
	p := newPair(t)
	a, b := p.a, p.b
	h := NewHandler(a.n, a.peerOf).(*handler)
	h.routes.Handle("GET /_matrix/federation/v1/boom", h.wrap(func(http.ResponseWriter, *http.Request) error { panic("boom") }))
	srv := httptest.NewServer(h)
	defer srv.Close()
	via := &fedServer{n: a.n, srv: srv} // signed points requests at via's listener
	expect(t, "panicking route", do(t, signed(t, via, b.name(), a.name(), b.n.SigningKey(), "GET", "/_matrix/federation/v1/boom", nil)),
		http.StatusInternalServerError, "M_UNKNOWN")
	r := do(t, signed(t, via, b.name(), a.name(), b.n.SigningKey(), "GET", profileURI(p.alice), nil))
	if r.status != http.StatusOK {
		t.Fatalf("after the panic: %d %v", r.status, r.body)
	}
}
