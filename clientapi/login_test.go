package clientapi_test

import (
	"testing"

	"github.com/edgenode/edgenode/internal/testnode"
)

func TestLoginLogout(t *testing.T) {
	t.Parallel()
	n := testnode.Start(t, testnode.Options{})
	alice := n.Register("alice")
	var second string // token of a second login
	password := map[string]any{
		"type":       "m.login.password",
		"identifier": map[string]any{"type": "m.id.user", "user": "alice"},
		"password":   "pw-alice",
	}
	runCases(t, n, []apiCase{
		{name: "flows", method: "GET", path: v3 + "/login", status: 200,
			check: func(t *testing.T, res testnode.Response) {
				flows, _ := res.Body["flows"].([]any)
				if len(flows) != 1 || field(flows[0], "type") != "m.login.password" {
					t.Errorf("flows %s", res.Raw)
				}
			}},
		{name: "password login with identifier", method: "POST", path: v3 + "/login", status: 200,
			body: map[string]any{
				"type":       "m.login.password",
				"identifier": map[string]any{"type": "m.id.user", "user": alice.UserID},
				"password":   "pw-alice", "device_id": "PHONE", "initial_device_display_name": "My phone",
			},
			check: func(t *testing.T, res testnode.Response) {
				if res.String("user_id") != alice.UserID || res.String("device_id") != "PHONE" ||
					res.String("access_token") == "" || res.String("home_server") != n.App.Node.ServerName() {
					t.Errorf("login response %s", res.Raw)
				}
				second = res.String("access_token")
			}},
		{name: "legacy user field", method: "POST", path: v3 + "/login", status: 200,
			body: map[string]any{"type": "m.login.password", "user": "alice", "password": "pw-alice"}},
		{name: "wrong password", method: "POST", path: v3 + "/login", status: 403, errcode: "M_FORBIDDEN",
			body: map[string]any{"type": "m.login.password", "user": "alice", "password": "wrong"}},
		{name: "unknown user", method: "POST", path: v3 + "/login", status: 403, errcode: "M_FORBIDDEN",
			body: map[string]any{"type": "m.login.password", "user": "nobody", "password": "x"}},
		{name: "unknown login type", method: "POST", path: v3 + "/login", status: 400, errcode: "M_UNKNOWN",
			body: map[string]any{"type": "m.login.token", "token": "x"}},
		{name: "third-party identifier", method: "POST", path: v3 + "/login", status: 400, errcode: "M_UNKNOWN",
			body: map[string]any{"type": "m.login.password", "password": "x",
				"identifier": map[string]any{"type": "m.id.thirdparty", "medium": "email", "address": "a@b"}}},
		{name: "missing identifier", method: "POST", path: v3 + "/login", status: 400, errcode: "M_MISSING_PARAM",
			body: map[string]any{"type": "m.login.password", "password": "x"}},
		{name: "missing password", method: "POST", path: v3 + "/login", status: 400, errcode: "M_MISSING_PARAM",
			body: map[string]any{"type": "m.login.password", "user": "alice"}},
		{name: "not JSON", method: "POST", path: v3 + "/login", status: 400, errcode: "M_NOT_JSON", body: []byte(`{"type":`)},
		{name: "mis-shaped", method: "POST", path: v3 + "/login", status: 400, errcode: "M_BAD_JSON",
			body: map[string]any{"type": "m.login.password", "user": "alice", "password": 5}},
		{name: "whoami", method: "GET", path: v3 + "/account/whoami", token: alice.Token, status: 200,
			check: func(t *testing.T, res testnode.Response) {
				if res.String("user_id") != alice.UserID || res.String("device_id") != alice.DeviceID || res.Body["is_guest"] != false {
					t.Errorf("whoami %s", res.Raw)
				}
			}},
	})

	// Logging out ends only the calling session; logging out everywhere
	// ends the rest.
	expect(t, n.Do("POST", v3+"/logout", alice.Token, nil), 200, "")
	expect(t, n.Do("GET", v3+"/account/whoami", alice.Token, nil), 401, "M_UNKNOWN_TOKEN")
	expect(t, n.Do("GET", v3+"/account/whoami", second, nil), 200, "")
	res := n.Do("POST", v3+"/login", "", password)
	expect(t, res, 200, "")
	third := res.String("access_token")
	expect(t, n.Do("POST", v3+"/logout/all", third, nil), 200, "")
	for _, tok := range []string{second, third} {
		expect(t, n.Do("GET", v3+"/account/whoami", tok, nil), 401, "M_UNKNOWN_TOKEN")
	}
	expect(t, n.Do("POST", v3+"/logout", third, nil), 401, "M_UNKNOWN_TOKEN")
}
