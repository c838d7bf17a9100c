package clientapi

import (
	"encoding/json"
	"net/http"

	"github.com/edgenode/edgenode/internal/mxhttp"
)

// getPresence answers GET /presence/{userId}/status. A user sees their own
// presence and that of users they share a joined room with; asking about
// anyone else is 403, whether or not that user exists.
func (a *api) getPresence(w http.ResponseWriter, r *http.Request) error {
	userID := r.PathValue("userId")
	ok, err := a.n.SharesRoom(r.Context(), mxhttp.DeviceFrom(r).UserID, userID)
	if err != nil {
		return err
	}
	if !ok {
		return mxhttp.Forbidden("you are not allowed to see their presence")
	}
	ps, err := a.n.Presence(r.Context(), userID)
	if err != nil {
		return err
	}
	mxhttp.WriteJSON(w, http.StatusOK, ps)
	return nil
}

// putPresence answers PUT /presence/{userId}/status: {presence, status_msg}.
// A status message left out (or null) is cleared, as a client that sets
// presence without one shows none.
func (a *api) putPresence(w http.ResponseWriter, r *http.Request) error {
	userID := r.PathValue("userId")
	if err := requireSelf(r, userID); err != nil {
		return err
	}
	var body struct {
		Presence  *string         `json:"presence"`
		StatusMsg json.RawMessage `json:"status_msg"`
	}
	if err := mxhttp.DecodeJSON(r, 0, &body); err != nil {
		return err
	}
	if body.Presence == nil {
		return mxhttp.MissingParam("missing presence")
	}
	msg := ""
	if !isNull(body.StatusMsg) && json.Unmarshal(body.StatusMsg, &msg) != nil {
		return mxhttp.BadJSON("status_msg must be a string")
	}
	if err := a.n.SetPresence(r.Context(), userID, *body.Presence, &msg); err != nil {
		return err
	}
	return writeOK(w)
}
