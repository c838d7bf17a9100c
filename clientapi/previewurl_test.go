package clientapi_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"testing"

	"github.com/edgenode/edgenode/app"
	"github.com/edgenode/edgenode/internal/testnode"
)

// The preview_url endpoints: the authenticated one and the deprecated one.
const (
	previewV1 = "/_matrix/client/v1/media/preview_url"
	previewV3 = "/_matrix/media/v3/preview_url"
)

// pageServer is a real web server on 127.0.0.1 serving a page with
// OpenGraph tags, counting the requests it gets.
func pageServer(t *testing.T) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var hits atomic.Int64
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, `<html><head><meta property="og:title" content="internal"></head></html>`)
	}))
	t.Cleanup(s.Close)
	return s, &hits
}

// TestPreviewURLOffByDefault: a node as configured by default answers
// preview_url as Synapse does with previews turned off, 404
// M_UNRECOGNIZED, on both paths, and fetches nothing; without an access
// token both answer 401 M_MISSING_TOKEN.
func TestPreviewURLOffByDefault(t *testing.T) {
	t.Parallel()
	s, hits := pageServer(t)
	n := testnode.Start(t, testnode.Options{})
	alice := n.Register("alice")
	q := "?url=" + url.QueryEscape(s.URL)
	runCases(t, n, []apiCase{
		{name: "v1 off", method: "GET", path: previewV1 + q, token: alice.Token, status: http.StatusNotFound, errcode: "M_UNRECOGNIZED"},
		{name: "v3 off", method: "GET", path: previewV3 + q, token: alice.Token, status: http.StatusNotFound, errcode: "M_UNRECOGNIZED"},
		{name: "v1 unauthenticated", method: "GET", path: previewV1 + q, status: http.StatusUnauthorized, errcode: "M_MISSING_TOKEN"},
		{name: "v3 unauthenticated", method: "GET", path: previewV3 + q, status: http.StatusUnauthorized, errcode: "M_MISSING_TOKEN"},
	})
	if n := hits.Load(); n != 0 {
		t.Errorf("the page server got %d requests, want none", n)
	}
}

// TestPreviewURLOn: turned on, the endpoints refuse a real server on
// loopback (403 M_FORBIDDEN, never contacted), refuse what is not an http
// URL, and hold a user to the rate limit.
func TestPreviewURLOn(t *testing.T) {
	t.Parallel()
	s, hits := pageServer(t)
	n := testnode.Start(t, testnode.Options{Configure: func(c *app.Config) { c.Node.URLPreview = true }})
	alice := n.Register("alice")
	bob := n.Register("bob")
	q := "?url=" + url.QueryEscape(s.URL)
	runCases(t, n, []apiCase{
		{name: "unauthenticated", method: "GET", path: previewV1 + q, status: http.StatusUnauthorized, errcode: "M_MISSING_TOKEN"},
		{name: "no url", method: "GET", path: previewV1, token: alice.Token, status: http.StatusBadRequest, errcode: "M_MISSING_PARAM"},
		{name: "bad ts", method: "GET", path: previewV1 + q + "&ts=soon", token: alice.Token, status: http.StatusBadRequest, errcode: "M_INVALID_PARAM"},
		{name: "file scheme", method: "GET", path: previewV1 + "?url=" + url.QueryEscape("file:///etc/passwd"), token: alice.Token, status: http.StatusBadRequest, errcode: "M_INVALID_PARAM"},
		{name: "loopback v1", method: "GET", path: previewV1 + q + "&ts=1510610716656", token: alice.Token, status: http.StatusForbidden, errcode: "M_FORBIDDEN"},
		{name: "loopback v3", method: "GET", path: previewV3 + q, token: alice.Token, status: http.StatusForbidden, errcode: "M_FORBIDDEN"},
		{name: "link-local metadata", method: "GET", path: previewV1 + "?url=" + url.QueryEscape("http://169.254.169.254/latest/meta-data/"), token: alice.Token, status: http.StatusForbidden, errcode: "M_FORBIDDEN"},
	})
	if n := hits.Load(); n != 0 {
		t.Errorf("the page server got %d requests, want none", n)
	}

	// Alice has spent 3 of her 10 (the refused fetches count; bad
	// parameters do not); bob's bucket is his own.
	for range 7 {
		expect(t, n.Do("GET", previewV1+q, alice.Token, nil), http.StatusForbidden, "M_FORBIDDEN")
	}
	res := n.Do("GET", previewV1+q, alice.Token, nil)
	expect(t, res, http.StatusTooManyRequests, "M_LIMIT_EXCEEDED")
	if ms, _ := res.Body["retry_after_ms"].(float64); ms <= 0 {
		t.Errorf("retry_after_ms %v, want > 0", res.Body["retry_after_ms"])
	}
	expect(t, n.Do("GET", previewV3+q, bob.Token, nil), http.StatusForbidden, "M_FORBIDDEN")
}
