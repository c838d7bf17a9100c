package clientapi_test

import (
	"testing"

	"github.com/edgenode/edgenode/internal/testnode"
)

func TestDevices(t *testing.T) {
	t.Parallel()
	n := testnode.Start(t, testnode.Options{})
	alice := n.Register("alice")
	bob := n.Register("bob")
	login := n.Do("POST", v3+"/login", "", map[string]any{
		"type": "m.login.password", "user": "alice", "password": "pw-alice", "device_id": "TABLET",
	})
	expect(t, login, 200, "")
	tablet := login.String("access_token")
	passwordAuth := func(user, pw string) map[string]any {
		return map[string]any{"type": "m.login.password", "session": "s",
			"identifier": map[string]any{"type": "m.id.user", "user": user}, "password": pw}
	}
	runCases(t, n, []apiCase{
		{name: "list", method: "GET", path: v3 + "/devices", token: alice.Token, status: 200,
			check: func(t *testing.T, res testnode.Response) {
				devs, _ := res.Body["devices"].([]any)
				if len(devs) != 2 {
					t.Fatalf("devices %s", res.Raw)
				}
				for _, d := range devs {
					if id := field(d, "device_id"); id != alice.DeviceID && id != "TABLET" {
						t.Errorf("device %v", d)
					}
				}
			}},
		{name: "rename", method: "PUT", path: v3 + "/devices/TABLET", token: alice.Token, status: 200,
			body: map[string]any{"display_name": "Kitchen tablet"}},
		{name: "get", method: "GET", path: v3 + "/devices/TABLET", token: alice.Token, status: 200,
			check: func(t *testing.T, res testnode.Response) {
				if res.String("device_id") != "TABLET" || res.String("display_name") != "Kitchen tablet" {
					t.Errorf("device %s", res.Raw)
				}
			}},
		{name: "get unknown", method: "GET", path: v3 + "/devices/NOPE", token: alice.Token, status: 404, errcode: "M_NOT_FOUND"},
		{name: "other user's device is unknown", method: "GET", path: v3 + "/devices/TABLET", token: bob.Token, status: 404, errcode: "M_NOT_FOUND"},
		{name: "rename unknown", method: "PUT", path: v3 + "/devices/NOPE", token: alice.Token, status: 404, errcode: "M_NOT_FOUND",
			body: map[string]any{"display_name": "x"}},
		{name: "rename mis-shaped", method: "PUT", path: v3 + "/devices/TABLET", token: alice.Token, status: 400, errcode: "M_BAD_JSON",
			body: map[string]any{"display_name": 7}},
		{name: "delete asks for the password", method: "DELETE", path: v3 + "/devices/TABLET", token: alice.Token, status: 401,
			check: func(t *testing.T, res testnode.Response) {
				flows, _ := res.Body["flows"].([]any)
				if len(flows) != 1 || field(flows[0], "stages").([]any)[0] != "m.login.password" || res.String("session") == "" {
					t.Errorf("challenge %s", res.Raw)
				}
			}},
		{name: "delete with wrong password", method: "DELETE", path: v3 + "/devices/TABLET", token: alice.Token, status: 401, errcode: "M_FORBIDDEN",
			body: map[string]any{"auth": passwordAuth("alice", "wrong")},
			check: func(t *testing.T, res testnode.Response) {
				if res.Body["flows"] == nil || res.String("session") != "s" {
					t.Errorf("failed stage must repeat the flows and session: %s", res.Raw)
				}
			}},
		{name: "delete with someone else's password", method: "DELETE", path: v3 + "/devices/TABLET", token: alice.Token, status: 403, errcode: "M_FORBIDDEN",
			body: map[string]any{"auth": passwordAuth("bob", "pw-bob")}},
		{name: "delete with password", method: "DELETE", path: v3 + "/devices/TABLET", token: alice.Token, status: 200,
			body: map[string]any{"auth": passwordAuth(alice.UserID, "pw-alice")}},
		{name: "deleted device's token fails", method: "GET", path: v3 + "/account/whoami", token: tablet, status: 401, errcode: "M_UNKNOWN_TOKEN"},
		{name: "bulk delete needs devices", method: "POST", path: v3 + "/delete_devices", token: alice.Token, status: 400, errcode: "M_MISSING_PARAM",
			body: map[string]any{"auth": passwordAuth("alice", "pw-alice")}},
		{name: "bulk delete asks for the password", method: "POST", path: v3 + "/delete_devices", token: alice.Token, status: 401,
			body: map[string]any{"devices": []string{alice.DeviceID}}},
		{name: "bulk delete", method: "POST", path: v3 + "/delete_devices", token: alice.Token, status: 200,
			body: map[string]any{"devices": []string{alice.DeviceID, "NEVER-EXISTED"}, "auth": passwordAuth("alice", "pw-alice")}},
		{name: "own token gone after deleting own device", method: "GET", path: v3 + "/devices", token: alice.Token, status: 401, errcode: "M_UNKNOWN_TOKEN"},
	})
}
