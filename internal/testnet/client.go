package testnet

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"testing"
)

// Call sends a client API request to baseURL+path as the holder of token
// (no Authorization header when token is empty) and returns the status and the
// decoded JSON body. body, when not nil, is sent as JSON. A body that is not
// JSON fails the test: the client API answers JSON, errors included.
func Call(tb testing.TB, baseURL, method, path, token string, body any) (int, map[string]any) {
	tb.Helper()
	status, raw := Raw(context.Background(), tb, method, baseURL+path, token, body)
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		tb.Fatalf("%s %s: %d, body not JSON: %v", method, baseURL+path, status, err)
	}
	return status, out
}

// MustCall is Call that fails the test on a status other than 200.
func MustCall(tb testing.TB, baseURL, method, path, token string, body any) map[string]any {
	tb.Helper()
	status, out := Call(tb, baseURL, method, path, token, body)
	if status != http.StatusOK {
		tb.Fatalf("%s %s: %d %v", method, baseURL+path, status, out)
	}
	return out
}

// GetJSON is an authenticated GET of baseURL+pathAndQuery (bounded by ctx)
// with the JSON body decoded into out. A status other than 200 or a body
// that does not decode fails the test.
func GetJSON(ctx context.Context, tb testing.TB, baseURL, token, pathAndQuery string, out any) {
	tb.Helper()
	status, raw := Raw(ctx, tb, http.MethodGet, baseURL+pathAndQuery, token, nil)
	if status != http.StatusOK {
		tb.Fatalf("GET %s: %d %s", pathAndQuery, status, raw)
	}
	if err := json.Unmarshal(raw, out); err != nil {
		tb.Fatalf("GET %s: %v", pathAndQuery, err)
	}
}

// Sync is one /sync with query q (since, timeout, filter; nil for an
// initial sync without a long poll), decoded into out: each test declares
// the part of the response it reads.
func Sync(ctx context.Context, tb testing.TB, baseURL, token string, q url.Values, out any) {
	tb.Helper()
	path := "/_matrix/client/v3/sync"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	GetJSON(ctx, tb, baseURL, token, path, out)
}

// Join joins roomID through the client API at baseURL (POST
// /join/{roomId}?server_name=serverName) and returns the status and body,
// for tests that check a refusal.
func Join(tb testing.TB, baseURL, token, roomID, serverName string) (int, map[string]any) {
	tb.Helper()
	path := "/_matrix/client/v3/join/" + url.PathEscape(roomID) + "?server_name=" + url.QueryEscape(serverName)
	return Call(tb, baseURL, http.MethodPost, path, token, map[string]any{})
}

// Raw sends one request to u (bounded by ctx) as the holder of token (no
// Authorization header when empty) and returns the status and the body as
// it came. body may be nil (no body), a []byte (sent as is, as JSON) or any
// other value (sent as its JSON encoding).
func Raw(ctx context.Context, tb testing.TB, method, u, token string, body any) (int, []byte) {
	tb.Helper()
	var rd io.Reader = http.NoBody
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			tb.Fatalf("encode body: %v", err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		tb.Fatalf("request: %v", err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("%s %s: read body: %v", method, u, err)
	}
	return resp.StatusCode, raw
}
