package syncapi_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"testing"
)

func filterPath(userID string) string {
	return "/_matrix/client/v3/user/" + url.PathEscape(userID) + "/filter"
}

func TestFilterUploadAndDownload(t *testing.T) {
	e := newEnv(t)
	alice, bob := e.user("alice"), e.user("bob")
	full := `{"room":{"state":{"types":["m.room.*"],"not_rooms":[]},"timeline":{"limit":10,"types":["m.room.message"],"not_rooms":[],"not_senders":[],"lazy_load_members":true},` +
		`"ephemeral":{"types":["m.receipt","m.typing"]},"include_leave":true},"presence":{"types":["m.presence"],"not_senders":[]},` +
		`"event_format":"client","event_fields":["type","content","sender"],"org.example.unknown":1}`

	tests := []struct {
		name    string
		token   string
		user    string
		body    string
		status  int
		errcode string
	}{
		{"full", alice.AccessToken, alice.UserID, full, 200, ""},
		{"empty", alice.AccessToken, alice.UserID, `{}`, 200, ""},
		{"for someone else", alice.AccessToken, bob.UserID, `{}`, 403, "M_FORBIDDEN"},
		{"not json", alice.AccessToken, alice.UserID, `{`, 400, "M_NOT_JSON"},
		{"not an object", alice.AccessToken, alice.UserID, `[]`, 400, "M_BAD_JSON"},
		{"room not an object", alice.AccessToken, alice.UserID, `{"room":"x"}`, 400, "M_BAD_JSON"},
		{"limit a string", alice.AccessToken, alice.UserID, `{"room":{"timeline":{"limit":"10"}}}`, 400, "M_BAD_JSON"},
		{"limit a fraction", alice.AccessToken, alice.UserID, `{"room":{"timeline":{"limit":1.5}}}`, 400, "M_BAD_JSON"},
		{"negative limit", alice.AccessToken, alice.UserID, `{"presence":{"limit":-1}}`, 400, "M_BAD_JSON"},
		{"types not a list", alice.AccessToken, alice.UserID, `{"room":{"state":{"types":"m.room.*"}}}`, 400, "M_BAD_JSON"},
		{"type not a string", alice.AccessToken, alice.UserID, `{"account_data":{"types":[1]}}`, 400, "M_BAD_JSON"},
		{"bad event_format", alice.AccessToken, alice.UserID, `{"event_format":"xml"}`, 400, "M_BAD_JSON"},
		{"bad room id", alice.AccessToken, alice.UserID, `{"room":{"rooms":["room"]}}`, 400, "M_BAD_JSON"},
		{"bad sender", alice.AccessToken, alice.UserID, `{"room":{"timeline":{"senders":["bob"]}}}`, 400, "M_BAD_JSON"},
		{"lazy not a bool", alice.AccessToken, alice.UserID, `{"room":{"timeline":{"lazy_load_members":"yes"}}}`, 400, "M_BAD_JSON"},
		{"no token", "", alice.UserID, `{}`, 401, "M_MISSING_TOKEN"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := e.tn.Do("POST", filterPath(tc.user), tc.token, []byte(tc.body))
			if res.Status != tc.status || res.Errcode() != tc.errcode {
				t.Fatalf("POST: got %d %s, want %d %s: %s", res.Status, res.Errcode(), tc.status, tc.errcode, res.Raw)
			}
			if tc.status != http.StatusOK {
				return
			}
			id := res.String("filter_id")
			if id == "" || id[0] == '{' {
				t.Fatalf("filter_id %q", id)
			}
			got := e.tn.Do("GET", filterPath(tc.user)+"/"+url.PathEscape(id), tc.token, nil)
			if got.Status != http.StatusOK {
				t.Fatalf("GET: %d %s", got.Status, got.Raw)
			}
			if !jsonEqual(t, got.Raw, []byte(tc.body)) {
				t.Fatalf("GET gave %s, uploaded %s", got.Raw, tc.body)
			}
			// Only the owner may read it.
			if res := e.tn.Do("GET", filterPath(tc.user)+"/"+id, bob.AccessToken, nil); res.Status != http.StatusForbidden {
				t.Fatalf("GET by another user: %d %s", res.Status, res.Raw)
			}
		})
	}

	for _, id := range []string{"999", "x", "%7B"} {
		res := e.tn.Do("GET", filterPath(alice.UserID)+"/"+id, alice.AccessToken, nil)
		if res.Status != http.StatusNotFound || res.Errcode() != "M_NOT_FOUND" {
			t.Fatalf("unknown filter %s: %d %s", id, res.Status, res.Raw)
		}
	}
}

func jsonEqual(t *testing.T, a, b []byte) bool {
	t.Helper()
	var va, vb any
	if err := json.Unmarshal(a, &va); err != nil {
		t.Fatalf("%v: %s", err, a)
	}
	if err := json.Unmarshal(b, &vb); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	ja, _ := json.Marshal(va)
	jb, _ := json.Marshal(vb)
	return string(ja) == string(jb)
}
