package testnet

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
)

// TestRoutes: a request for a known server name reaches its listener with
// the path and query kept; an unknown one is an error, not a request to
// the open internet.
func TestRoutes(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Got", r.URL.RequestURI())
	}))
	defer srv.Close()
	client := &http.Client{Transport: Routes{"known.example": srv.URL}}
	res, err := client.Get("https://known.example/_matrix/federation/v1/version?x=1")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if got := res.Header.Get("X-Got"); got != "/_matrix/federation/v1/version?x=1" {
		t.Fatalf("listener got %q", got)
	}
	if _, err := client.Get("https://unknown.example/"); err == nil {
		t.Fatal("a request to an unknown server name went somewhere")
	}
}

// TestCallWithoutToken: no Authorization header is sent for an empty
// token, and a JSON body is sent as JSON.
func TestCallWithoutToken(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"auth":"` + r.Header.Get("Authorization") + `","type":"` + r.Header.Get("Content-Type") + `"}`))
	}))
	defer srv.Close()
	_, body := Call(t, srv.URL, http.MethodPost, "/", "", map[string]any{})
	if body["auth"] != "" || body["type"] != "application/json" {
		t.Fatalf("without a token: %v", body)
	}
	var out map[string]string
	GetJSON(context.Background(), t, srv.URL, "tok", "/", &out)
	if out["auth"] != "Bearer tok" || out["type"] != "" {
		t.Fatalf("GET with a token: %v", out)
	}
}

func TestQUICAddrs(t *testing.T) {
	for _, tc := range []struct {
		name  string
		addrs []string
		want  []string
	}{
		{"none", nil, nil},
		{"quic kept, tcp dropped", []string{
			"/ip4/127.0.0.1/tcp/4001/p2p/12D3",
			"/ip4/127.0.0.1/udp/4001/quic-v1/p2p/12D3",
		}, []string{"/ip4/127.0.0.1/udp/4001/quic-v1/p2p/12D3"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := QUICAddrs(tc.addrs); !slices.Equal(got, tc.want) {
				t.Fatalf("QUICAddrs(%v) = %v, want %v", tc.addrs, got, tc.want)
			}
		})
	}
}
