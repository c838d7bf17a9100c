package clientapi_test

import (
	"testing"

	"github.com/edgenode/edgenode/internal/testnode"
)

func TestSendToDevice(t *testing.T) {
	t.Parallel()
	n := testnode.Start(t, testnode.Options{})
	alice := n.Register("alice")
	bob := n.Register("bob")
	msg := map[string]any{"messages": map[string]any{bob.UserID: map[string]any{"*": map[string]any{"body": "hi"}}}}
	runCases(t, n, []apiCase{
		{name: "send", method: "PUT", path: v3 + "/sendToDevice/m.test/t1", token: alice.Token, body: msg, status: 200,
			check: func(t *testing.T, res testnode.Response) {
				if len(res.Body) != 0 {
					t.Errorf("body %s, want {}", res.Raw)
				}
			}},
		{name: "retry of the transaction", method: "PUT", path: v3 + "/sendToDevice/m.test/t1", token: alice.Token, body: msg, status: 200},
		{name: "to a device by name", method: "PUT", path: v3 + "/sendToDevice/m.test/t2", token: alice.Token, status: 200,
			body: map[string]any{"messages": map[string]any{bob.UserID: map[string]any{bob.DeviceID: map[string]any{}}}}},
		{name: "no token", method: "PUT", path: v3 + "/sendToDevice/m.test/t3", body: msg, status: 401, errcode: "M_MISSING_TOKEN"},
		{name: "no messages", method: "PUT", path: v3 + "/sendToDevice/m.test/t3", token: alice.Token, body: map[string]any{}, status: 400, errcode: "M_MISSING_PARAM"},
		{name: "not JSON", method: "PUT", path: v3 + "/sendToDevice/m.test/t3", token: alice.Token, body: []byte("{"), status: 400, errcode: "M_NOT_JSON"},
		{name: "messages of the wrong shape", method: "PUT", path: v3 + "/sendToDevice/m.test/t3", token: alice.Token, status: 400, errcode: "M_BAD_JSON",
			body: map[string]any{"messages": []string{"x"}}},
		{name: "bad user ID", method: "PUT", path: v3 + "/sendToDevice/m.test/t3", token: alice.Token, status: 400, errcode: "M_INVALID_PARAM",
			body: map[string]any{"messages": map[string]any{"bob": map[string]any{"*": map[string]any{}}}}},
		{name: "content not an object", method: "PUT", path: v3 + "/sendToDevice/m.test/t3", token: alice.Token, status: 400, errcode: "M_BAD_JSON",
			body: map[string]any{"messages": map[string]any{bob.UserID: map[string]any{"*": "x"}}}},
		{name: "wrong method", method: "GET", path: v3 + "/sendToDevice/m.test/t3", token: alice.Token, status: 405, errcode: "M_UNRECOGNIZED"},
	})
}
