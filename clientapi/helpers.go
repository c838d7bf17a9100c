package clientapi

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/edgenode/edgenode/internal/mxhttp"
)

// maxContentBytes caps the body of a request whose body becomes an event's
// content. An event's canonical JSON may not exceed 65536 bytes, so a body
// above that can never become an event: refusing it before reading further
// also bounds memory. Smaller bodies that still make too large an event are
// refused by the node (core.ErrTooLarge), also as 413 M_TOO_LARGE.
const maxContentBytes = 65536

// writeOK answers 200 with an empty JSON object, the spec's reply for
// endpoints that have nothing to return.
func writeOK(w http.ResponseWriter) error {
	mxhttp.WriteJSON(w, http.StatusOK, struct{}{})
	return nil
}

// isObject reports whether raw is a JSON object. Fields typed as
// json.RawMessage accept any JSON value, so object-valued fields need this.
func isObject(raw json.RawMessage) bool {
	s := strings.TrimSpace(string(raw))
	return strings.HasPrefix(s, "{")
}

// isNull reports whether a raw field is absent or JSON null; both mean "not
// given".
func isNull(raw json.RawMessage) bool {
	s := strings.TrimSpace(string(raw))
	return s == "" || s == "null"
}

// localpart returns the localpart of a user ID ("@alice:server" -> "alice").
func localpart(userID string) string {
	lp, _, _ := strings.Cut(strings.TrimPrefix(userID, "@"), ":")
	return lp
}

// newSessionID returns a random opaque identifier for a user-interactive
// auth session.
func newSessionID() string {
	b := make([]byte, 18)
	_, _ = rand.Read(b) // never fails on supported platforms
	return base64.RawURLEncoding.EncodeToString(b)
}
