package clientapi

import (
	"encoding/json"
	"net/http"

	"github.com/edgenode/edgenode/internal/mxhttp"
	"github.com/edgenode/edgenode/node"
	"github.com/matrix-org/gomatrixserverlib/spec"
)

// serverControlled reports account data types clients may read but not set
// through the generic endpoints: the server gives them meaning and has its
// own endpoints for them (read markers, push rules). The spec answers such a
// PUT with 405 M_BAD_JSON.
func serverControlled(evType string) bool {
	return evType == node.AccountDataFullyRead || evType == node.AccountDataPushRules
}

// getAccountData answers GET /user/{userId}/account_data/{type} and, with a
// {roomId}, GET /user/{userId}/rooms/{roomId}/account_data/{type}.
func (a *api) getAccountData(w http.ResponseWriter, r *http.Request) error {
	userID, roomID, err := ownAccountDataPath(r)
	if err != nil {
		return err
	}
	content, err := a.n.AccountData(r.Context(), userID, roomID, r.PathValue("type"))
	if err != nil {
		return err
	}
	writeRaw(w, content)
	return nil
}

// putAccountData answers PUT /user/{userId}/account_data/{type} and its
// per-room form. The body, a JSON object, is the content.
func (a *api) putAccountData(w http.ResponseWriter, r *http.Request) error {
	userID, roomID, err := ownAccountDataPath(r)
	if err != nil {
		return err
	}
	evType := r.PathValue("type")
	if serverControlled(evType) {
		return mxhttp.Errorf(http.StatusMethodNotAllowed, "M_BAD_JSON", "cannot set %s through this API", evType)
	}
	body, err := mxhttp.ReadBody(r, 0)
	if err != nil {
		return err
	}
	if err := a.n.SetAccountData(r.Context(), userID, roomID, evType, body); err != nil {
		return err
	}
	return writeOK(w)
}

// getTags answers GET /user/{userId}/rooms/{roomId}/tags.
func (a *api) getTags(w http.ResponseWriter, r *http.Request) error {
	userID, roomID, err := ownAccountDataPath(r)
	if err != nil {
		return err
	}
	tags, err := a.n.Tags(r.Context(), userID, roomID)
	if err != nil {
		return err
	}
	writeRaw(w, tags)
	return nil
}

// putTag answers PUT /user/{userId}/rooms/{roomId}/tags/{tag}; the body is
// the tag's object, whose order, if any, must be a number.
func (a *api) putTag(w http.ResponseWriter, r *http.Request) error {
	userID, roomID, err := ownAccountDataPath(r)
	if err != nil {
		return err
	}
	body, err := mxhttp.ReadBody(r, 0)
	if err != nil {
		return err
	}
	if err := a.n.SetTag(r.Context(), userID, roomID, r.PathValue("tag"), body); err != nil {
		return err
	}
	return writeOK(w)
}

// deleteTag answers DELETE /user/{userId}/rooms/{roomId}/tags/{tag}.
// Removing a tag the room does not have succeeds.
func (a *api) deleteTag(w http.ResponseWriter, r *http.Request) error {
	userID, roomID, err := ownAccountDataPath(r)
	if err != nil {
		return err
	}
	if err := a.n.DeleteTag(r.Context(), userID, roomID, r.PathValue("tag")); err != nil {
		return err
	}
	return writeOK(w)
}

// ownAccountDataPath returns the path's user and room ("" on the global
// routes), checking that the user is the caller (account data is private to
// its user, for reading as for writing) and that a room ID is one.
func ownAccountDataPath(r *http.Request) (userID, roomID string, err error) {
	userID, roomID = r.PathValue("userId"), r.PathValue("roomId")
	if err := requireSelf(r, userID); err != nil {
		return "", "", err
	}
	if roomID != "" {
		if _, err := spec.NewRoomID(roomID); err != nil {
			return "", "", mxhttp.InvalidParam("%q is not a valid room ID", roomID)
		}
	}
	return userID, roomID, nil
}

// requireSelf refuses a request about another user than the caller.
func requireSelf(r *http.Request, userID string) error {
	if userID != mxhttp.DeviceFrom(r).UserID {
		return mxhttp.Forbidden("cannot access another user's data")
	}
	return nil
}

// writeRaw answers 200 with stored JSON as it is.
func writeRaw(w http.ResponseWriter, raw json.RawMessage) {
	mxhttp.WriteJSON(w, http.StatusOK, raw)
}
