package clientapi

import (
	"errors"
	"net/http"

	"github.com/edgenode/edgenode/internal/mxhttp"
	"github.com/edgenode/edgenode/node/core"
)

// Login types and identifier types this server understands.
const (
	loginPassword = "m.login.password"
	idUser        = "m.id.user"
)

// userIdentifier is the spec's identifier object; only m.id.user is
// supported (no third-party IDs on an embedded node).
type userIdentifier struct {
	Type string `json:"type"`
	User string `json:"user"`
}

// loginRequest is the body of POST /login.
type loginRequest struct {
	Type                     string          `json:"type"`
	Identifier               *userIdentifier `json:"identifier"`
	User                     string          `json:"user"` // deprecated form of identifier
	Password                 string          `json:"password"`
	DeviceID                 string          `json:"device_id"`
	InitialDeviceDisplayName string          `json:"initial_device_display_name"`
}

// sessionResponse is what login and registration return.
type sessionResponse struct {
	UserID      string `json:"user_id"`
	AccessToken string `json:"access_token,omitempty"`
	DeviceID    string `json:"device_id,omitempty"`
	HomeServer  string `json:"home_server"`
}

// loginFlows answers GET /login.
func (a *api) loginFlows(w http.ResponseWriter, r *http.Request) error {
	mxhttp.WriteJSON(w, http.StatusOK, map[string]any{
		"flows": []map[string]string{{"type": loginPassword}},
	})
	return nil
}

// login answers POST /login: password login for a local user, rate-limited
// on wrong passwords (loginlimit.go).
func (a *api) login(w http.ResponseWriter, r *http.Request) error {
	var req loginRequest
	if err := mxhttp.DecodeJSON(r, 0, &req); err != nil {
		return err
	}
	if req.Type != loginPassword {
		return mxhttp.Errorf(http.StatusBadRequest, "M_UNKNOWN", "unknown login type %q", req.Type)
	}
	user, err := identifiedUser(req.Identifier, req.User)
	if err != nil {
		return err
	}
	if req.Password == "" {
		return mxhttp.MissingParam("missing password")
	}
	if err := checkDeviceID(req.DeviceID); err != nil {
		return err
	}
	done, err := a.logins.begin(loginKeys(r, user))
	if err != nil {
		return err
	}
	sess, err := a.n.Login(r.Context(), user, req.Password, req.DeviceID, initialDeviceDisplayName(req.InitialDeviceDisplayName))
	done(errors.Is(err, core.ErrBadLogin))
	if err != nil {
		return err
	}
	a.log.Info("login", "user_id", sess.UserID, "device_id", sess.DeviceID)
	mxhttp.WriteJSON(w, http.StatusOK, sessionResponse{
		UserID: sess.UserID, AccessToken: sess.AccessToken, DeviceID: sess.DeviceID, HomeServer: a.n.ServerName(),
	})
	return nil
}

// identifiedUser returns the user named by an identifier object or, for old
// clients, by the deprecated top-level "user" field.
func identifiedUser(id *userIdentifier, legacy string) (string, error) {
	if id == nil {
		if legacy == "" {
			return "", mxhttp.MissingParam("missing identifier")
		}
		return legacy, nil
	}
	if id.Type != idUser {
		return "", mxhttp.Errorf(http.StatusBadRequest, "M_UNKNOWN", "unsupported identifier type %q", id.Type)
	}
	if id.User == "" {
		return "", mxhttp.MissingParam("missing identifier.user")
	}
	return id.User, nil
}

// logout answers POST /logout: the calling device and its token go away.
func (a *api) logout(w http.ResponseWriter, r *http.Request) error {
	dev := mxhttp.DeviceFrom(r)
	if err := a.n.Logout(r.Context(), dev.UserID, dev.DeviceID); err != nil {
		return err
	}
	return writeOK(w)
}

// logoutAll answers POST /logout/all: every device of the user goes away.
func (a *api) logoutAll(w http.ResponseWriter, r *http.Request) error {
	dev := mxhttp.DeviceFrom(r)
	if err := a.n.LogoutAll(r.Context(), dev.UserID); err != nil {
		return err
	}
	return writeOK(w)
}

// whoami answers GET /account/whoami.
func (a *api) whoami(w http.ResponseWriter, r *http.Request) error {
	dev := mxhttp.DeviceFrom(r)
	mxhttp.WriteJSON(w, http.StatusOK, map[string]any{
		"user_id": dev.UserID, "device_id": dev.DeviceID, "is_guest": false,
	})
	return nil
}
