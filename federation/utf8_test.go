package federation

import (
	"encoding/json"
	"net/http"
	"testing"
)

// TestSendBodyNotUTF8: a transaction whose body is not UTF-8 is refused
// with 400 M_NOT_JSON, which says what is wrong with it, rather than the
// library's 401 that blames the signature (what a sender saw of finding 3
// of issue 13). A signed body that is UTF-8 still goes through.
func TestSendBodyNotUTF8(t *testing.T) {
	p := newPair(t)
	key := p.b.n.SigningKey()
	for _, tc := range []struct {
		name    string
		body    string
		status  int
		errcode string
	}{
		{"invalid UTF-8", "{\"origin\":\"" + p.b.name() + "\",\"pdus\":[],\"x\":\"BAD-\xff\xfe\"}", http.StatusBadRequest, "M_NOT_JSON"},
		{"UTF-8", "{\"origin\":\"" + p.b.name() + "\",\"pdus\":[],\"x\":\"grüße \U0001F600\"}", http.StatusOK, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := signed(t, p.a, p.b.name(), p.a.name(), key, "PUT", "/_matrix/federation/v1/send/"+tc.name[:3], json.RawMessage(tc.body))
			expect(t, tc.name, do(t, req), tc.status, tc.errcode)
		})
	}
}
