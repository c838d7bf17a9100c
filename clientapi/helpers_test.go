package clientapi_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/edgenode/edgenode/internal/testnode"
)

const v3 = "/_matrix/client/v3"

// apiCase is one request and what must come back. Cases of a table run in
// order against one node, so later cases may rely on earlier ones.
type apiCase struct {
	name    string
	method  string
	path    string
	token   string
	body    any
	status  int
	errcode string
	check   func(t *testing.T, res testnode.Response)
}

func runCases(t *testing.T, n *testnode.Node, cases []apiCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := n.Do(c.method, c.path, c.token, c.body)
			expect(t, res, c.status, c.errcode)
			if c.check != nil && !t.Failed() {
				c.check(t, res)
			}
		})
	}
}

// expect fails the test unless res has the status and (when not empty) the
// errcode.
func expect(t *testing.T, res testnode.Response, status int, errcode string) {
	t.Helper()
	if res.Status != status || res.Errcode() != errcode {
		t.Fatalf("got %d %q, want %d %q; body %s", res.Status, res.Errcode(), status, errcode, res.Raw)
	}
}

// esc escapes one path segment (room IDs, aliases, user IDs, event IDs).
func esc(s string) string { return url.PathEscape(s) }

func createRoom(t *testing.T, n *testnode.Node, u testnode.User, body map[string]any) string {
	t.Helper()
	if body == nil {
		body = map[string]any{}
	}
	res := n.Do("POST", v3+"/createRoom", u.Token, body)
	expect(t, res, http.StatusOK, "")
	id := res.String("room_id")
	if !strings.HasPrefix(id, "!") {
		t.Fatalf("createRoom: room_id %q", id)
	}
	return id
}

func sendText(t *testing.T, n *testnode.Node, u testnode.User, roomID, txnID, text string) string {
	t.Helper()
	res := n.Do("PUT", v3+"/rooms/"+esc(roomID)+"/send/m.room.message/"+esc(txnID), u.Token,
		map[string]any{"msgtype": "m.text", "body": text})
	expect(t, res, http.StatusOK, "")
	return res.String("event_id")
}

// decodeRaw decodes a response body that is not an object (arrays).
func decodeRaw(t *testing.T, res testnode.Response, v any) {
	t.Helper()
	if err := json.Unmarshal(res.Raw, v); err != nil {
		t.Fatalf("decode %s: %v", res.Raw, err)
	}
}

// field walks nested objects of a decoded body: field(b, "a", "b").
func field(v any, path ...string) any {
	for _, k := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}
