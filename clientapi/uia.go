package clientapi

import (
	"errors"
	"net/http"

	"github.com/edgenode/edgenode/internal/mxhttp"
	"github.com/edgenode/edgenode/node"
	"github.com/edgenode/edgenode/node/core"
)

// User-interactive auth stages this server offers.
const (
	stageDummy    = "m.login.dummy"
	stagePassword = "m.login.password"
)

// authData is the "auth" object of a request protected by user-interactive
// auth. Only the single-stage flows above are offered, so sessions carry no
// progress and need not be stored: a client that completes the stage in any
// request has completed the flow. The session ID is still issued and echoed
// because clients expect one.
type authData struct {
	Type       string          `json:"type"`
	Session    string          `json:"session"`
	Identifier *userIdentifier `json:"identifier"`
	User       string          `json:"user"` // deprecated form of identifier
	Password   string          `json:"password"`
}

// authResponse is the spec's AuthenticationResponse: what a 401 from a
// protected endpoint carries.
func authResponse(stage, session string) map[string]any {
	if session == "" {
		session = newSessionID()
	}
	return map[string]any{
		"flows":   []map[string][]string{{"stages": {stage}}},
		"params":  map[string]any{},
		"session": session,
	}
}

// writeAuthChallenge answers the first call of a protected endpoint (one
// without "auth") with 401 and the flows to follow. This is the spec's
// AuthenticationResponse, not an error: it deliberately has no errcode,
// because clients (matrix-js-sdk among them) show an errcode on this first
// 401 as a failure to the user.
func writeAuthChallenge(w http.ResponseWriter, stage string) {
	mxhttp.WriteJSON(w, http.StatusUnauthorized, authResponse(stage, ""))
}

// authFailed is a failed attempt at a stage: 401 with the flows again, and
// this time an errcode saying what went wrong.
func authFailed(stage, session, code, msg string) error {
	return &mxhttp.Error{
		Status: http.StatusUnauthorized, Code: code, Message: msg,
		Extra: authResponse(stage, session),
	}
}

// checkPasswordAuth completes the m.login.password stage for dev's user. It
// returns false with a nil error when it has written the initial challenge,
// and an error when the attempt failed; true means the caller may proceed.
// Wrong passwords count against the same buckets as /login's, so a stolen
// access token is no way round the login limit for guessing the password.
func (a *api) checkPasswordAuth(w http.ResponseWriter, r *http.Request, dev node.Device, auth *authData) (bool, error) {
	if auth == nil || auth.Type == "" {
		writeAuthChallenge(w, stagePassword)
		return false, nil
	}
	if auth.Type != stagePassword {
		return false, mxhttp.Errorf(http.StatusBadRequest, "M_UNRECOGNIZED", "unsupported auth type %q", auth.Type)
	}
	user, err := identifiedUser(auth.Identifier, auth.User)
	if err != nil {
		return false, err
	}
	if user != dev.UserID && user != localpart(dev.UserID) {
		// Proving you know someone else's password does not authorise you.
		return false, mxhttp.Forbidden("auth is for another user")
	}
	done, err := a.logins.begin(loginKeys(r, dev.UserID))
	if err != nil {
		return false, err
	}
	err = a.n.CheckPassword(r.Context(), dev.UserID, auth.Password)
	done(errors.Is(err, core.ErrBadLogin))
	if err != nil {
		if errors.Is(err, core.ErrBadLogin) {
			return false, authFailed(stagePassword, auth.Session, "M_FORBIDDEN", "invalid password")
		}
		return false, err
	}
	return true, nil
}
