package clientapi_test

import (
	"net/url"
	"testing"

	"github.com/edgenode/edgenode/internal/testnode"
)

// TestRemoteQueriesWithoutFederation: a node run without federation cannot
// ask other servers. Keys of their users are failures (never a silent
// empty answer), and their aliases and profiles are not found.
func TestRemoteQueriesWithoutFederation(t *testing.T) {
	t.Parallel()
	n := testnode.Start(t, testnode.Options{})
	alice := n.Register("alice")

	res := n.Do("POST", v3+"/keys/query", alice.Token, map[string]any{
		"device_keys": map[string]any{"@bob:other.example": []string{}}, "timeout": 1000,
	})
	expect(t, res, 200, "")
	if field(res.Body, "failures", "other.example", "errcode") != "M_UNKNOWN" {
		t.Errorf("keys/query failures: %s", res.Raw)
	}
	res = n.Do("POST", v3+"/keys/claim", alice.Token, map[string]any{
		"one_time_keys": map[string]any{"@bob:other.example": map[string]string{"DEV": "signed_curve25519"}},
	})
	expect(t, res, 200, "")
	if field(res.Body, "failures", "other.example") == nil {
		t.Errorf("keys/claim failures: %s", res.Raw)
	}
	expect(t, n.Do("GET", v3+"/directory/room/"+url.PathEscape("#room:other.example"), alice.Token, nil), 404, "M_NOT_FOUND")
	expect(t, n.Do("GET", v3+"/profile/"+url.PathEscape("@bob:other.example"), alice.Token, nil), 404, "M_NOT_FOUND")
	expect(t, n.Do("GET", v3+"/profile/not-a-user-id", alice.Token, nil), 400, "M_INVALID_PARAM")
}
