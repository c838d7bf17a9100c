package clientapi

import (
	"net/http"
	"strings"

	"github.com/edgenode/edgenode/internal/mxhttp"
	"github.com/edgenode/edgenode/node"
	"github.com/edgenode/edgenode/node/core"
)

// registerRequest is the body of POST /register.
type registerRequest struct {
	Auth                     *authData `json:"auth"`
	Username                 string    `json:"username"`
	Password                 *string   `json:"password"`
	DeviceID                 string    `json:"device_id"`
	InitialDeviceDisplayName string    `json:"initial_device_display_name"`
	InhibitLogin             bool      `json:"inhibit_login"`
}

// register answers POST /register. Registration is guarded by the single
// m.login.dummy stage: the node decides who may register (OpenRegistration),
// and on a loopback-only API there is nobody to run a captcha against.
func (a *api) register(w http.ResponseWriter, r *http.Request) error {
	switch kind := r.URL.Query().Get("kind"); kind {
	case "", "user":
	case "guest":
		return mxhttp.Errorf(http.StatusForbidden, "M_GUEST_ACCESS_FORBIDDEN", "guest accounts are not supported")
	default:
		return mxhttp.InvalidParam("unknown kind %q", kind)
	}
	if !a.n.Config().OpenRegistration {
		return core.ErrRegistrationDisabled
	}
	var req registerRequest
	if err := mxhttp.DecodeJSON(r, 0, &req); err != nil {
		return err
	}
	// The spec asks for username problems before user-interactive auth, so
	// a client learns that a name is taken before it walks the stages.
	if req.Username != "" {
		if err := a.n.CheckUsername(r.Context(), strings.ToLower(req.Username)); err != nil {
			return err
		}
	}
	// No password is allowed (the spec makes it optional; the account then
	// cannot log in with one). An empty one is a client mistake that would
	// leave an account nobody can log into while its client believes it
	// set a password: refused like Synapse's password policy refuses
	// passwords, 400 M_WEAK_PASSWORD, before the auth stages.
	if req.Password != nil && *req.Password == "" {
		return mxhttp.Errorf(http.StatusBadRequest, "M_WEAK_PASSWORD", "the password may not be empty")
	}
	if err := checkDeviceID(req.DeviceID); err != nil {
		return err
	}
	if req.Auth == nil || req.Auth.Type == "" {
		writeAuthChallenge(w, stageDummy)
		return nil
	}
	if req.Auth.Type != stageDummy {
		return mxhttp.Errorf(http.StatusBadRequest, "M_UNRECOGNIZED", "unsupported auth type %q", req.Auth.Type)
	}
	// Charged here, after the checks that write nothing and before the
	// account is made: the first request, which only learns the flows,
	// costs nothing.
	if err := a.regs.take(r); err != nil {
		return err
	}
	var password string
	if req.Password != nil {
		password = *req.Password
	}
	sess, err := a.n.Register(r.Context(), node.RegisterRequest{
		Localpart:         req.Username,
		Password:          password,
		DeviceID:          req.DeviceID,
		DeviceDisplayName: initialDeviceDisplayName(req.InitialDeviceDisplayName),
		InhibitLogin:      req.InhibitLogin,
	})
	if err != nil {
		return err
	}
	a.log.Info("registered", "user_id", sess.UserID, "device_id", sess.DeviceID)
	mxhttp.WriteJSON(w, http.StatusOK, sessionResponse{
		UserID: sess.UserID, AccessToken: sess.AccessToken, DeviceID: sess.DeviceID, HomeServer: a.n.ServerName(),
	})
	return nil
}

// registerAvailable answers GET /register/available?username=.
func (a *api) registerAvailable(w http.ResponseWriter, r *http.Request) error {
	username := r.URL.Query().Get("username")
	if username == "" {
		return mxhttp.MissingParam("missing username")
	}
	if err := a.n.CheckUsername(r.Context(), strings.ToLower(username)); err != nil {
		return err
	}
	mxhttp.WriteJSON(w, http.StatusOK, map[string]bool{"available": true})
	return nil
}
