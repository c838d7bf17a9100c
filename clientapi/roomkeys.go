package clientapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/edgenode/edgenode/internal/mxhttp"
	"github.com/edgenode/edgenode/node/keybackup"
)

// keyBackups is server-side key backup (node/keybackup).
type keyBackups interface {
	CreateKeyBackup(ctx context.Context, userID, algorithm string, authData json.RawMessage) (string, error)
	KeyBackupVersion(ctx context.Context, userID, version string) (keybackup.Version, error)
	UpdateKeyBackup(ctx context.Context, userID, version, algorithm string, authData json.RawMessage) error
	DeleteKeyBackup(ctx context.Context, userID, version string) error
	PutRoomKeys(ctx context.Context, userID, version string, upload keybackup.RoomKeysUpload) (keybackup.Counts, error)
	RoomKey(ctx context.Context, userID, version, roomID, sessionID string) (json.RawMessage, error)
	RoomKeys(ctx context.Context, userID, version, roomID string, fn func(roomID, sessionID string, key json.RawMessage) error) error
	DeleteRoomKeys(ctx context.Context, userID, version, roomID, sessionID string) (keybackup.Counts, error)
}

// maxBackupVersionBody bounds the body of a backup version's creation or
// update: an algorithm and auth_data (keybackup.MaxAuthDataBytes).
const maxBackupVersionBody = 64 << 10

// backupVersionBody is the body of POST /room_keys/version and PUT
// /room_keys/version/{version}.
type backupVersionBody struct {
	Algorithm string          `json:"algorithm"`
	AuthData  json.RawMessage `json:"auth_data"`
	// Version, on an update only, must be the path's if present.
	Version *string `json:"version"`
}

// createKeyBackup answers POST /room_keys/version.
func (a *api) createKeyBackup(w http.ResponseWriter, r *http.Request) error {
	var body backupVersionBody
	if err := mxhttp.DecodeJSON(r, maxBackupVersionBody, &body); err != nil {
		return err
	}
	v, err := a.n.CreateKeyBackup(r.Context(), mxhttp.DeviceFrom(r).UserID, body.Algorithm, body.AuthData)
	if err != nil {
		return err
	}
	mxhttp.WriteJSON(w, http.StatusOK, map[string]string{"version": v})
	return nil
}

// getKeyBackup answers GET /room_keys/version (the current version) and
// GET /room_keys/version/{version}.
func (a *api) getKeyBackup(w http.ResponseWriter, r *http.Request) error {
	info, err := a.n.KeyBackupVersion(r.Context(), mxhttp.DeviceFrom(r).UserID, r.PathValue("version"))
	if err != nil {
		return err
	}
	mxhttp.WriteJSON(w, http.StatusOK, info)
	return nil
}

// putKeyBackup answers PUT /room_keys/version/{version}: a new auth_data.
func (a *api) putKeyBackup(w http.ResponseWriter, r *http.Request) error {
	var body backupVersionBody
	if err := mxhttp.DecodeJSON(r, maxBackupVersionBody, &body); err != nil {
		return err
	}
	version := r.PathValue("version")
	if body.Version != nil && *body.Version != version {
		return mxhttp.InvalidParam("the body's version %q is not the path's %q", *body.Version, version)
	}
	if err := a.n.UpdateKeyBackup(r.Context(), mxhttp.DeviceFrom(r).UserID, version, body.Algorithm, body.AuthData); err != nil {
		return err
	}
	return writeOK(w)
}

// deleteKeyBackup answers DELETE /room_keys/version/{version}.
func (a *api) deleteKeyBackup(w http.ResponseWriter, r *http.Request) error {
	if err := a.n.DeleteKeyBackup(r.Context(), mxhttp.DeviceFrom(r).UserID, r.PathValue("version")); err != nil {
		return err
	}
	return writeOK(w)
}

// roomKeysPath is what a /room_keys/keys request names: the version (a
// required query parameter), and the room and session of the longer paths
// ("" on the shorter ones).
type roomKeysPath struct {
	userID, version, roomID, sessionID string
}

func parseRoomKeysPath(r *http.Request) (roomKeysPath, error) {
	p := roomKeysPath{userID: mxhttp.DeviceFrom(r).UserID, roomID: r.PathValue("roomId"), sessionID: r.PathValue("sessionId")}
	versions, ok := r.URL.Query()["version"]
	if !ok || len(versions) == 0 {
		return p, mxhttp.MissingParam("the version query parameter is required")
	}
	p.version = versions[0]
	// The route says which path this is: a path value may be empty.
	if strings.Contains(r.Pattern, "{roomId}") {
		if err := keybackup.CheckRoomID(p.roomID); err != nil {
			return p, err
		}
	}
	if strings.Contains(r.Pattern, "{sessionId}") {
		if err := keybackup.CheckSessionID(p.sessionID); err != nil {
			return p, err
		}
	}
	return p, nil
}

// wrongVersion turns the node's WrongVersionError into the spec's 403
// M_WRONG_ROOM_KEYS_VERSION, which names the current version.
func wrongVersion(err error) error {
	var wv *keybackup.WrongVersionError
	if errors.As(err, &wv) {
		e := mxhttp.Errorf(http.StatusForbidden, "M_WRONG_ROOM_KEYS_VERSION", "wrong backup version; the current one is %s", wv.Current)
		e.Extra = map[string]any{"current_version": wv.Current}
		return e
	}
	return err
}

// putRoomKeys answers PUT /room_keys/keys, /room_keys/keys/{roomId} and
// /room_keys/keys/{roomId}/{sessionId}: each body is the one above it in
// that list, one level down.
func (a *api) putRoomKeys(w http.ResponseWriter, r *http.Request) error {
	p, err := parseRoomKeysPath(r)
	if err != nil {
		return err
	}
	raw, err := mxhttp.ReadBody(r, 0)
	if err != nil {
		return err
	}
	upload := keybackup.RoomKeysUpload{}
	switch {
	case p.sessionID != "":
		upload[p.roomID] = map[string]json.RawMessage{p.sessionID: raw}
	case p.roomID != "":
		var body struct {
			Sessions map[string]json.RawMessage `json:"sessions"`
		}
		if err := mxhttp.UnmarshalBody(raw, &body); err != nil {
			return err
		}
		if body.Sessions == nil {
			return mxhttp.BadJSON("sessions is required and must be an object")
		}
		upload[p.roomID] = body.Sessions
	default:
		var body struct {
			Rooms map[string]*struct {
				Sessions map[string]json.RawMessage `json:"sessions"`
			} `json:"rooms"`
		}
		if err := mxhttp.UnmarshalBody(raw, &body); err != nil {
			return err
		}
		if body.Rooms == nil {
			return mxhttp.BadJSON("rooms is required and must be an object")
		}
		for room, keys := range body.Rooms {
			if keys == nil || keys.Sessions == nil {
				return mxhttp.BadJSON("rooms.%s.sessions is required and must be an object", room)
			}
			upload[room] = keys.Sessions
		}
	}
	counts, err := a.n.PutRoomKeys(r.Context(), p.userID, p.version, upload)
	if err != nil {
		return wrongVersion(err)
	}
	mxhttp.WriteJSON(w, http.StatusOK, counts)
	return nil
}

// deleteRoomKeys answers DELETE on the three /room_keys/keys paths.
func (a *api) deleteRoomKeys(w http.ResponseWriter, r *http.Request) error {
	p, err := parseRoomKeysPath(r)
	if err != nil {
		return err
	}
	counts, err := a.n.DeleteRoomKeys(r.Context(), p.userID, p.version, p.roomID, p.sessionID)
	if err != nil {
		return err
	}
	mxhttp.WriteJSON(w, http.StatusOK, counts)
	return nil
}

// getRoomKeys answers GET on the three /room_keys/keys paths. One session
// is one key or 404; a room with no keys is {"sessions":{}} and a backup
// with none {"rooms":{}}, as the spec says.
func (a *api) getRoomKeys(w http.ResponseWriter, r *http.Request) error {
	p, err := parseRoomKeysPath(r)
	if err != nil {
		return err
	}
	if p.sessionID != "" {
		key, err := a.n.RoomKey(r.Context(), p.userID, p.version, p.roomID, p.sessionID)
		if err != nil {
			return err
		}
		writeRaw(w, key)
		return nil
	}
	return a.streamRoomKeys(w, r, p)
}
