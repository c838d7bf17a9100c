package clientapi_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/edgenode/edgenode/internal/testnode"
)

func TestVersionsAndCapabilities(t *testing.T) {
	t.Parallel()
	n := testnode.Start(t, testnode.Options{})
	alice := n.Register("alice")
	runCases(t, n, []apiCase{
		{name: "versions needs no token", method: "GET", path: "/_matrix/client/versions", status: 200,
			check: func(t *testing.T, res testnode.Response) {
				vs, _ := res.Body["versions"].([]any)
				if !slices.Contains(vs, any("v1.1")) || !slices.Contains(vs, any("v1.12")) {
					t.Errorf("versions %v", vs)
				}
				if _, ok := res.Body["unstable_features"].(map[string]any); !ok {
					t.Errorf("unstable_features missing: %s", res.Raw)
				}
			}},
		{name: "capabilities", method: "GET", path: v3 + "/capabilities", token: alice.Token, status: 200,
			check: func(t *testing.T, res testnode.Response) {
				caps := field(res.Body, "capabilities")
				if got := field(caps, "m.room_versions", "default"); got != "10" {
					t.Errorf("default room version %v", got)
				}
				avail, _ := field(caps, "m.room_versions", "available").(map[string]any)
				if avail["10"] != "stable" || avail["11"] != "stable" || len(avail) != 2 {
					t.Errorf("available room versions %v", avail)
				}
				if got := field(caps, "m.change_password", "enabled"); got != false {
					t.Errorf("m.change_password %v", got)
				}
			}},
		{name: "capabilities needs a token", method: "GET", path: v3 + "/capabilities", status: 401, errcode: "M_MISSING_TOKEN"},
	})
}

// TestEdge covers what every endpoint shares: routing errors, token errors
// and CORS.
func TestEdge(t *testing.T) {
	t.Parallel()
	n := testnode.Start(t, testnode.Options{})
	alice := n.Register("alice")
	runCases(t, n, []apiCase{
		{name: "unknown endpoint", method: "GET", path: v3 + "/no/such/thing", token: alice.Token, status: 404, errcode: "M_UNRECOGNIZED"},
		{name: "unknown endpoint without token", method: "POST", path: "/_matrix/client/v9/login", status: 404, errcode: "M_UNRECOGNIZED"},
		{name: "wrong method", method: "DELETE", path: v3 + "/createRoom", token: alice.Token, status: 405, errcode: "M_UNRECOGNIZED"},
		{name: "wrong method on public path", method: "PUT", path: "/_matrix/client/versions", status: 405, errcode: "M_UNRECOGNIZED"},
		{name: "missing token", method: "GET", path: v3 + "/account/whoami", status: 401, errcode: "M_MISSING_TOKEN"},
		{name: "bad token", method: "GET", path: v3 + "/account/whoami", token: "nope", status: 401, errcode: "M_UNKNOWN_TOKEN"},
		{name: "token in query", method: "GET", path: v3 + "/account/whoami?access_token=" + alice.Token, status: 200},
	})

	t.Run("OPTIONS answers CORS preflight", func(t *testing.T) {
		req, err := http.NewRequest("OPTIONS", n.URL+v3+"/rooms/!x:y/send/m.room.message/1", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Origin", "https://app.example")
		req.Header.Set("Access-Control-Request-Method", "PUT")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Fatalf("status %d", res.StatusCode)
		}
		for h, want := range map[string]string{
			"Access-Control-Allow-Origin":  "*",
			"Access-Control-Allow-Methods": "PUT",
			"Access-Control-Allow-Headers": "Authorization",
		} {
			if got := res.Header.Get(h); !containsFold(got, want) {
				t.Errorf("%s = %q, want it to contain %q", h, got, want)
			}
		}
	})
}

// containsFold reports whether a comma-separated header value lists want.
func containsFold(header, want string) bool {
	for _, p := range strings.Split(header, ",") {
		if strings.EqualFold(strings.TrimSpace(p), want) {
			return true
		}
	}
	return false
}
