package clientapi

import (
	"encoding/json"
	"net/http"

	"github.com/edgenode/edgenode/internal/mxhttp"
	"github.com/edgenode/edgenode/node/core"
)

// createRoomRequest is the body of POST /createRoom. Object-valued fields
// are kept raw for the node, and checked to be objects here.
type createRoomRequest struct {
	Visibility                string            `json:"visibility"`
	RoomAliasName             string            `json:"room_alias_name"`
	Name                      *string           `json:"name"`
	Topic                     *string           `json:"topic"`
	Invite                    []string          `json:"invite"`
	RoomVersion               string            `json:"room_version"`
	CreationContent           json.RawMessage   `json:"creation_content"`
	InitialState              []initialStateReq `json:"initial_state"`
	Preset                    string            `json:"preset"`
	IsDirect                  bool              `json:"is_direct"`
	PowerLevelContentOverride json.RawMessage   `json:"power_level_content_override"`
}

// initialStateReq is one entry of createRoom's initial_state.
type initialStateReq struct {
	Type     string          `json:"type"`
	StateKey string          `json:"state_key"`
	Content  json.RawMessage `json:"content"`
}

// createRoom answers POST /createRoom.
func (a *api) createRoom(w http.ResponseWriter, r *http.Request) error {
	dev := mxhttp.DeviceFrom(r)
	var req createRoomRequest
	if err := mxhttp.DecodeJSON(r, 0, &req); err != nil {
		return err
	}
	switch req.Visibility {
	case "", "public", "private":
	default:
		return mxhttp.InvalidParam("visibility must be public or private")
	}
	// null means "not given"; anything else must be an object.
	for name, raw := range map[string]*json.RawMessage{
		"creation_content": &req.CreationContent, "power_level_content_override": &req.PowerLevelContentOverride,
	} {
		if isNull(*raw) {
			*raw = nil
		} else if !isObject(*raw) {
			return mxhttp.BadJSON("%s must be an object", name)
		}
	}
	initial := make([]core.InitialStateEvent, 0, len(req.InitialState))
	for i, is := range req.InitialState {
		if is.Type == "" {
			return mxhttp.BadJSON("initial_state[%d]: missing type", i)
		}
		if !isObject(is.Content) {
			return mxhttp.BadJSON("initial_state[%d]: content must be an object", i)
		}
		initial = append(initial, core.InitialStateEvent{Type: is.Type, StateKey: is.StateKey, Content: is.Content})
	}
	roomID, err := a.n.CreateRoom(r.Context(), core.CreateRoomRequest{
		Creator:                   dev.UserID,
		DeviceID:                  dev.DeviceID,
		Preset:                    req.Preset,
		Visibility:                req.Visibility,
		Name:                      req.Name,
		Topic:                     req.Topic,
		Invite:                    req.Invite,
		RoomAliasName:             req.RoomAliasName,
		IsDirect:                  req.IsDirect,
		InitialState:              initial,
		PowerLevelContentOverride: req.PowerLevelContentOverride,
		CreationContent:           req.CreationContent,
		RoomVersion:               req.RoomVersion,
	})
	if err != nil {
		return err
	}
	a.log.Debug("room created", "room_id", roomID, "creator", dev.UserID)
	mxhttp.WriteJSON(w, http.StatusOK, map[string]string{"room_id": roomID})
	return nil
}

// joinedRooms answers GET /joined_rooms.
func (a *api) joinedRooms(w http.ResponseWriter, r *http.Request) error {
	dev := mxhttp.DeviceFrom(r)
	rooms, err := a.n.JoinedRooms(r.Context(), dev.UserID)
	if err != nil {
		return err
	}
	mxhttp.WriteJSON(w, http.StatusOK, map[string][]string{"joined_rooms": rooms})
	return nil
}
