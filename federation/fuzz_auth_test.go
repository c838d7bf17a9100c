package federation

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/edgenode/edgenode/internal/identity"
)

// FuzzXMatrixAuthorization sends a signed request whose Authorization
// header the fuzzer rewrites through the whole inbound handler (per-peer and
// global limits set out of the way). Whatever the header, the answer is the request served
// (the seed's valid header, or a harmless respelling of it) or 401
// M_UNAUTHORIZED: never a panic or another status. An origin the handler
// accepts is always a key-derived server name.
func FuzzXMatrixAuthorization(f *testing.F) {
	p := newPair(f)
	a, b := p.a, p.b
	uri := profileURI(p.alice)
	valid := signed(f, a, b.name(), a.name(), b.n.SigningKey(), "GET", uri, nil).Header.Get("Authorization")
	for _, seed := range []string{
		valid,
		valid[:strings.Index(valid, ",destination=")],
		valid[:len(valid)/2],
		strings.Replace(valid, "origin=", "origin=\"", 1),
		strings.Replace(valid, b.name(), strings.ToUpper(b.name()), 1),
		strings.Replace(valid, "ed25519:", "ed25519", 1),
		"X-Matrix", "X-Matrix ", "X-Matrix origin=,key=,sig=", `X-Matrix origin="a",origin="b"`,
		"Bearer x", "", "x-matrix origin=" + b.name(), "X-Matrix ,,,,===\"\"\"",
	} {
		f.Add(seed)
	}
	h := NewHandlerWithOptions(a.n, a.peerOf, HandlerOptions{
		Limits: Limits{MaxInFlight: 1 << 20, Rate: 1e12, Burst: 1 << 30},
		Global: GlobalLimits{MaxInFlight: 1 << 20, Rate: 1e12, Burst: 1 << 30, StrangerShare: 1},
	})
	f.Fuzz(func(t *testing.T, header string) {
		req := httptest.NewRequest("GET", uri, nil)
		req.Header.Set("Authorization", header)
		if origin, err := xMatrixOrigin(req); err == nil {
			if _, err := identity.PublicKeyFromServerName(string(origin)); err != nil {
				t.Fatalf("xMatrixOrigin accepted %q: %v", origin, err)
			}
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		switch {
		case w.Code == http.StatusOK:
		case w.Code == http.StatusUnauthorized && strings.Contains(w.Body.String(), `"M_UNAUTHORIZED"`):
		default:
			t.Fatalf("Authorization %q: %d %s", header, w.Code, w.Body)
		}
	})
}
