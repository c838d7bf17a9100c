package clientapi_test

import (
	"testing"

	"github.com/edgenode/edgenode/internal/testnode"
)

func TestRegister(t *testing.T) {
	t.Parallel()
	n := testnode.Start(t, testnode.Options{})
	n.Register("taken")
	dummy := map[string]any{"type": "m.login.dummy"}
	var session string
	runCases(t, n, []apiCase{
		{name: "no auth gets the flows", method: "POST", path: v3 + "/register", status: 401,
			body: map[string]any{"username": "bob", "password": "pw"},
			check: func(t *testing.T, res testnode.Response) {
				flows, _ := res.Body["flows"].([]any)
				stages, _ := field(flows[0], "stages").([]any)
				if len(flows) != 1 || len(stages) != 1 || stages[0] != "m.login.dummy" {
					t.Errorf("flows %s", res.Raw)
				}
				if _, ok := res.Body["params"].(map[string]any); !ok {
					t.Errorf("params missing: %s", res.Raw)
				}
				if session = res.String("session"); session == "" {
					t.Errorf("session missing: %s", res.Raw)
				}
				if res.Errcode() != "" {
					t.Errorf("first 401 carries errcode %q", res.Errcode())
				}
			}},
		{name: "dummy auth registers", method: "POST", path: v3 + "/register", status: 200,
			body: map[string]any{"username": "Bob", "password": "pw-bob", "device_id": "DEV1",
				"initial_device_display_name": "Laptop", "auth": dummy},
			check: func(t *testing.T, res testnode.Response) {
				if res.String("user_id") != "@bob:"+n.App.Node.ServerName() || res.String("device_id") != "DEV1" || res.String("access_token") == "" {
					t.Errorf("register %s", res.Raw)
				}
				me := n.Do("GET", v3+"/account/whoami", res.String("access_token"), nil)
				expect(t, me, 200, "")
			}},
		{name: "username taken is checked before auth", method: "POST", path: v3 + "/register", status: 400, errcode: "M_USER_IN_USE",
			body: map[string]any{"username": "taken", "password": "pw"}},
		{name: "invalid username", method: "POST", path: v3 + "/register", status: 400, errcode: "M_INVALID_USERNAME",
			body: map[string]any{"username": "no spaces", "password": "pw", "auth": dummy}},
		{name: "inhibit_login", method: "POST", path: v3 + "/register", status: 200,
			body: map[string]any{"username": "carol", "password": "pw", "inhibit_login": true, "auth": dummy},
			check: func(t *testing.T, res testnode.Response) {
				if res.String("user_id") == "" || res.String("access_token") != "" || res.String("device_id") != "" {
					t.Errorf("inhibited register %s", res.Raw)
				}
			}},
		{name: "generated username", method: "POST", path: v3 + "/register", status: 200,
			body: map[string]any{"auth": dummy, "inhibit_login": true},
			check: func(t *testing.T, res testnode.Response) {
				if res.String("user_id") == "" {
					t.Errorf("register %s", res.Raw)
				}
			}},
		{name: "guest", method: "POST", path: v3 + "/register?kind=guest", status: 403, errcode: "M_GUEST_ACCESS_FORBIDDEN",
			body: map[string]any{}},
		{name: "unknown kind", method: "POST", path: v3 + "/register?kind=robot", status: 400, errcode: "M_INVALID_PARAM",
			body: map[string]any{}},
		{name: "unknown auth type", method: "POST", path: v3 + "/register", status: 400, errcode: "M_UNRECOGNIZED",
			body: map[string]any{"username": "dave", "auth": map[string]any{"type": "m.login.recaptcha"}}},
		{name: "not JSON", method: "POST", path: v3 + "/register", status: 400, errcode: "M_NOT_JSON", body: []byte("nope")},
		{name: "mis-shaped", method: "POST", path: v3 + "/register", status: 400, errcode: "M_BAD_JSON",
			body: map[string]any{"username": []string{"x"}}},
		{name: "available", method: "GET", path: v3 + "/register/available?username=free", status: 200,
			check: func(t *testing.T, res testnode.Response) {
				if res.Body["available"] != true {
					t.Errorf("available %s", res.Raw)
				}
			}},
		{name: "not available", method: "GET", path: v3 + "/register/available?username=taken", status: 400, errcode: "M_USER_IN_USE"},
		{name: "available: invalid", method: "GET", path: v3 + "/register/available?username=%C3%A9", status: 400, errcode: "M_INVALID_USERNAME"},
		{name: "available: missing", method: "GET", path: v3 + "/register/available", status: 400, errcode: "M_MISSING_PARAM"},
	})
}

func TestRegisterClosed(t *testing.T) {
	t.Parallel()
	n := testnode.Start(t, testnode.Options{ClosedRegistration: true})
	runCases(t, n, []apiCase{
		{name: "closed", method: "POST", path: v3 + "/register", status: 403, errcode: "M_FORBIDDEN",
			body: map[string]any{"username": "eve", "password": "pw", "auth": map[string]any{"type": "m.login.dummy"}}},
		{name: "closed, first call", method: "POST", path: v3 + "/register", status: 403, errcode: "M_FORBIDDEN",
			body: map[string]any{"username": "eve"}},
	})
}
