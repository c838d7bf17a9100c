package federation

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgenode/edgenode/internal/identity"
	"github.com/edgenode/edgenode/internal/testnet"
	"github.com/edgenode/edgenode/node"
	"github.com/matrix-org/gomatrixserverlib"
	"github.com/matrix-org/gomatrixserverlib/fclient"
	"github.com/matrix-org/gomatrixserverlib/spec"
)

// fedServer is a node serving its federation handler on 127.0.0.1. peer is
// what the simulated transport reports as the authenticated peer of every
// request (the libp2p transport derives it from the connection).
type fedServer struct {
	n   *node.Node
	srv *httptest.Server

	mu   sync.Mutex
	peer string
	ok   bool
}

func (s *fedServer) setPeer(name string, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.peer, s.ok = name, ok
}

func (s *fedServer) peerOf(*http.Request) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peer, s.ok
}

func (s *fedServer) name() string { return s.n.ServerName() }

func newFedServer(t testing.TB) *fedServer {
	t.Helper()
	cfg := testnet.NodeConfig(t.TempDir())
	cfg.OpenRegistration = true
	s := &fedServer{n: testnet.OpenNode(t, cfg)}
	s.srv = httptest.NewServer(NewHandler(s.n, s.peerOf))
	t.Cleanup(s.srv.Close) // before the node closes (cleanups run last first)
	return s
}

type pair struct {
	a, b  *fedServer
	alice string
}

// newPair starts A (with @alice, display name "Alice") and B; each server's
// authenticated peer is initially the other.
func newPair(t testing.TB) pair {
	t.Helper()
	a, b := newFedServer(t), newFedServer(t)
	a.setPeer(b.name(), true)
	b.setPeer(a.name(), true)
	ctx := context.Background()
	s := testnet.RegisterWith(ctx, t, a.n, node.RegisterRequest{Localpart: "alice", InhibitLogin: true})
	dn := "Alice"
	if err := a.n.SetProfile(ctx, s.UserID, "", &dn, nil); err != nil {
		t.Fatalf("set profile: %v", err)
	}
	return pair{a: a, b: b, alice: s.UserID}
}

func (p pair) clientB() *Client {
	return NewClient(p.b.n, p.routes())
}

// routes sends requests for A and B to their listeners.
func (p pair) routes() testnet.Routes {
	return testnet.Routes{p.a.name(): p.a.srv.URL, p.b.name(): p.b.srv.URL}
}

// signed builds a request signed as origin with key, addressed to dest, and
// pointed at s's listener.
func signed(t testing.TB, s *fedServer, origin, dest string, key ed25519.PrivateKey, method, uri string, content any) *http.Request {
	t.Helper()
	fr := fclient.NewFederationRequest(method, spec.ServerName(origin), spec.ServerName(dest), uri)
	if content != nil {
		if err := fr.SetContent(content); err != nil {
			t.Fatal(err)
		}
	}
	if err := fr.Sign(spec.ServerName(origin), identity.KeyID, key); err != nil {
		t.Fatal(err)
	}
	req, err := fr.HTTPRequest()
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(s.srv.URL)
	req.URL.Scheme, req.URL.Host, req.Host = "http", u.Host, u.Host
	return req
}

type result struct {
	status int
	body   map[string]any
}

func (r result) errcode() string { s, _ := r.body["errcode"].(string); return s }

func do(t *testing.T, req *http.Request) result {
	t.Helper()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer res.Body.Close()
	var out result
	out.status = res.StatusCode
	raw, _ := io.ReadAll(res.Body)
	if err := json.Unmarshal(raw, &out.body); err != nil {
		t.Fatalf("%s %s: %d non-JSON body %q", req.Method, req.URL, res.StatusCode, raw)
	}
	return out
}

func expect(t *testing.T, what string, r result, status int, errcode string) {
	t.Helper()
	if r.status != status || r.errcode() != errcode {
		t.Fatalf("%s: got %d %q %v, want %d %q", what, r.status, r.errcode(), r.body, status, errcode)
	}
}

func profileURI(userID string) string {
	return "/_matrix/federation/v1/query/profile?user_id=" + url.QueryEscape(userID)
}

func TestQueryProfileEndToEnd(t *testing.T) {
	p := newPair(t)
	c := p.clientB()
	ctx := context.Background()

	prof, err := c.QueryProfile(ctx, p.a.name(), p.alice, "")
	if err != nil {
		t.Fatalf("QueryProfile: %v", err)
	}
	if prof.DisplayName != "Alice" {
		t.Fatalf("displayname = %q, want Alice", prof.DisplayName)
	}
	prof, err = c.QueryProfile(ctx, p.a.name(), p.alice, "displayname")
	if err != nil || prof.DisplayName != "Alice" {
		t.Fatalf("QueryProfile(displayname) = %+v, %v", prof, err)
	}

	// Unknown local user, and a user of another server: 404 M_NOT_FOUND.
	for _, uid := range []string{p.a.n.UserID("nobody"), p.b.n.UserID("bob")} {
		_, err = c.QueryProfile(ctx, p.a.name(), uid, "")
		var re *RemoteError
		if !errors.As(err, &re) || re.Status != http.StatusNotFound || re.Code != "M_NOT_FOUND" {
			t.Fatalf("QueryProfile(%s) error = %v, want 404 M_NOT_FOUND", uid, err)
		}
	}

	// The client refuses destinations that are not key-derived.
	if _, err := c.QueryProfile(ctx, "example.org", p.alice, ""); !errors.Is(err, identity.ErrNotKeyDerived) {
		t.Fatalf("QueryProfile(example.org) error = %v, want identity.ErrNotKeyDerived", err)
	}
}

func TestOriginMustBeAuthenticatedPeer(t *testing.T) {
	p := newPair(t)
	c := p.clientB()
	ctx := context.Background()

	// Valid signature by B, but the transport says the peer is someone else.
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	p.a.setPeer(identity.ServerNameForKey(other.Public().(ed25519.PublicKey)), true)
	_, err := c.QueryProfile(ctx, p.a.name(), p.alice, "")
	var re *RemoteError
	if !errors.As(err, &re) || re.Status != http.StatusForbidden || re.Code != "M_FORBIDDEN" {
		t.Fatalf("origin != peer: error = %v, want 403 M_FORBIDDEN", err)
	}

	// No authenticated peer at all.
	p.a.setPeer("", false)
	req := signed(t, p.a, p.b.name(), p.a.name(), p.b.n.SigningKey(), "GET", profileURI(p.alice), nil)
	expect(t, "no peer", do(t, req), http.StatusForbidden, "M_FORBIDDEN")

	// The right peer again: accepted.
	p.a.setPeer(p.b.name(), true)
	req = signed(t, p.a, p.b.name(), p.a.name(), p.b.n.SigningKey(), "GET", profileURI(p.alice), nil)
	r := do(t, req)
	if r.status != http.StatusOK || r.body["displayname"] != "Alice" {
		t.Fatalf("signed request: %d %v", r.status, r.body)
	}
}

func TestAuthenticationFailures(t *testing.T) {
	p := newPair(t)
	a, b := p.a, p.b
	bKey := b.n.SigningKey()
	_, otherKey, _ := ed25519.GenerateKey(rand.Reader)
	uri := profileURI(p.alice)

	t.Run("no authorization", func(t *testing.T) {
		req, _ := http.NewRequest("GET", a.srv.URL+uri, nil)
		expect(t, "unsigned", do(t, req), http.StatusUnauthorized, "M_UNAUTHORIZED")
		req, _ = http.NewRequest("GET", a.srv.URL+uri, nil)
		req.Header.Set("Authorization", "Bearer abc")
		expect(t, "bearer", do(t, req), http.StatusUnauthorized, "M_UNAUTHORIZED")
	})
	t.Run("unknown path unauthenticated", func(t *testing.T) {
		req, _ := http.NewRequest("GET", a.srv.URL+"/_matrix/federation/v1/nope", nil)
		expect(t, "unsigned unknown", do(t, req), http.StatusUnauthorized, "M_UNAUTHORIZED")
	})
	t.Run("wrong key for origin", func(t *testing.T) {
		req := signed(t, a, b.name(), a.name(), otherKey, "GET", uri, nil)
		expect(t, "wrong key", do(t, req), http.StatusUnauthorized, "M_UNAUTHORIZED")
	})
	t.Run("tampered path", func(t *testing.T) {
		req := signed(t, a, b.name(), a.name(), bKey, "GET", uri, nil)
		req.URL.RawQuery = "user_id=" + url.QueryEscape(a.n.UserID("mallory"))
		expect(t, "tampered query", do(t, req), http.StatusUnauthorized, "M_UNAUTHORIZED")
		req = signed(t, a, b.name(), a.name(), bKey, "GET", "/_matrix/federation/v1/version", nil)
		req.URL.Path = "/_matrix/federation/v1/query/profile"
		req.URL.RawQuery = uri[strings.Index(uri, "?")+1:]
		expect(t, "tampered path", do(t, req), http.StatusUnauthorized, "M_UNAUTHORIZED")
	})
	t.Run("tampered method", func(t *testing.T) {
		req := signed(t, a, b.name(), a.name(), bKey, "GET", uri, nil)
		req.Method = "DELETE"
		expect(t, "tampered method", do(t, req), http.StatusUnauthorized, "M_UNAUTHORIZED")
	})
	t.Run("tampered body", func(t *testing.T) {
		req := signed(t, a, b.name(), a.name(), bKey, "PUT", "/_matrix/federation/v1/send/txn1", map[string]any{"pdus": []any{}, "n": 1})
		tampered := []byte(`{"pdus":[],"n":2}`)
		req.Body, req.ContentLength = io.NopCloser(bytes.NewReader(tampered)), int64(len(tampered))
		expect(t, "tampered body", do(t, req), http.StatusUnauthorized, "M_UNAUTHORIZED")
	})
	t.Run("malformed server name", func(t *testing.T) {
		for _, origin := range []string{
			"example.org",
			strings.ToUpper(b.name()),
			b.name()[:62],
			b.name() + "00",
			b.name()[:63] + "g",
			b.name() + ":8448",
		} {
			req := signed(t, a, origin, a.name(), bKey, "GET", uri, nil)
			expect(t, "origin "+origin, do(t, req), http.StatusUnauthorized, "M_UNAUTHORIZED")
		}
	})
	t.Run("wrong destination", func(t *testing.T) {
		req := signed(t, a, b.name(), b.name(), bKey, "GET", uri, nil)
		expect(t, "destination", do(t, req), http.StatusUnauthorized, "M_UNAUTHORIZED")
	})
	t.Run("no destination", func(t *testing.T) {
		// Destination is optional (older servers omit it); the signature
		// then covers this server's name.
		req := signed(t, a, b.name(), a.name(), bKey, "GET", uri, nil)
		h := req.Header.Get("Authorization")
		req.Header.Set("Authorization", h[:strings.Index(h, ",destination=")])
		r := do(t, req)
		if r.status != http.StatusOK {
			t.Fatalf("no destination: %d %v", r.status, r.body)
		}
	})
}

func TestRoutingAndParams(t *testing.T) {
	p := newPair(t)
	a, b := p.a, p.b
	key := b.n.SigningKey()

	// /version needs no authentication (the spec's rule).
	plain, _ := http.NewRequest("GET", a.srv.URL+"/_matrix/federation/v1/version", nil)
	r := do(t, plain)
	srv, _ := r.body["server"].(map[string]any)
	if r.status != http.StatusOK || srv["name"] != "edgenode" || srv["version"] == "" {
		t.Fatalf("version: %d %v", r.status, r.body)
	}
	expect(t, "unknown federation path",
		do(t, signed(t, a, b.name(), a.name(), key, "GET", "/_matrix/federation/v1/nope", nil)), http.StatusNotFound, "M_UNRECOGNIZED")
	req, _ := http.NewRequest("GET", a.srv.URL+"/_matrix/other", nil)
	expect(t, "unknown path", do(t, req), http.StatusNotFound, "M_UNRECOGNIZED")
	expect(t, "missing user_id",
		do(t, signed(t, a, b.name(), a.name(), key, "GET", "/_matrix/federation/v1/query/profile", nil)), http.StatusBadRequest, "M_MISSING_PARAM")
	expect(t, "bad field",
		do(t, signed(t, a, b.name(), a.name(), key, "GET", profileURI(p.alice)+"&field=email", nil)), http.StatusBadRequest, "M_INVALID_PARAM")
	expect(t, "wrong method",
		do(t, signed(t, a, b.name(), a.name(), key, "POST", "/_matrix/federation/v1/version", map[string]any{})), http.StatusMethodNotAllowed, "M_UNRECOGNIZED")
	expect(t, "unclean path",
		do(t, signed(t, a, b.name(), a.name(), key, "GET", "/_matrix/federation/v1//version", nil)), http.StatusNotFound, "M_UNRECOGNIZED")
	req = signed(t, a, b.name(), a.name(), key, "PUT", "/_matrix/federation/v1/send/t", map[string]any{})
	req.Header.Set("Content-Type", "text/plain")
	expect(t, "not JSON", do(t, req), http.StatusBadRequest, "M_NOT_JSON")
	r = do(t, signed(t, a, b.name(), a.name(), key, "GET", profileURI(p.alice)+"&field=avatar_url", nil))
	if r.status != http.StatusOK || len(r.body) != 0 {
		t.Fatalf("field=avatar_url: %d %v, want 200 {}", r.status, r.body)
	}
}

func TestOversizedBody(t *testing.T) {
	p := newPair(t)
	a, b := p.a, p.b
	big := map[string]any{"pad": strings.Repeat("x", MaxBodyBytes)}

	// Properly signed, with a Content-Length.
	req := signed(t, a, b.name(), a.name(), b.n.SigningKey(), "PUT", "/_matrix/federation/v1/send/txn1", big)
	expect(t, "signed big body", do(t, req), http.StatusRequestEntityTooLarge, "M_TOO_LARGE")

	// Unsigned, chunked (no Content-Length): still 413 rather than read whole.
	raw, _ := json.Marshal(big)
	req, _ = http.NewRequest("PUT", a.srv.URL+"/_matrix/federation/v1/send/txn2", io.MultiReader(bytes.NewReader(raw)))
	req.Header.Set("Content-Type", "application/json")
	expect(t, "chunked big body", do(t, req), http.StatusRequestEntityTooLarge, "M_TOO_LARGE")
}

func TestKeyServer(t *testing.T) {
	a := newFedServer(t)
	res, err := http.Get(a.srv.URL + "/_matrix/key/v2/server")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("key server: %d %s", res.StatusCode, raw)
	}
	var keys gomatrixserverlib.ServerKeys
	if err := json.Unmarshal(raw, &keys); err != nil {
		t.Fatalf("decode %s: %v", raw, err)
	}
	if string(keys.ServerName) != a.name() {
		t.Fatalf("server_name = %q, want %q", keys.ServerName, a.name())
	}
	pub, err := identity.PublicKeyFromServerName(string(keys.ServerName))
	if err != nil {
		t.Fatal(err)
	}
	if vk, ok := keys.VerifyKeys[identity.KeyID]; !ok || !bytes.Equal(vk.Key, pub) {
		t.Fatalf("verify_keys = %v, want %s: %x", keys.VerifyKeys, identity.KeyID, pub)
	}
	if !keys.ValidUntilTS.Time().After(time.Now()) {
		t.Fatalf("valid_until_ts %v is not in the future", keys.ValidUntilTS.Time())
	}
	if err := gomatrixserverlib.VerifyJSON(a.name(), identity.KeyID, pub, raw); err != nil {
		t.Fatalf("self-signature: %v", err)
	}
	// The derived-key verifier agrees.
	vr, err := identity.KeyRing{}.VerifyJSONs(context.Background(), []gomatrixserverlib.VerifyJSONRequest{{
		ServerName: keys.ServerName, AtTS: spec.AsTimestamp(time.Now()), Message: raw,
	}})
	if err != nil || vr[0].Error != nil {
		t.Fatalf("KeyRing rejects the key object: %v %v", err, vr)
	}
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	if err := gomatrixserverlib.VerifyJSON(a.name(), identity.KeyID, other.Public().(ed25519.PublicKey), raw); err == nil {
		t.Fatal("signature verified with an unrelated key")
	}
}
