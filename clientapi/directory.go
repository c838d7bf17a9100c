package clientapi

import (
	"errors"
	"net/http"
	"strings"

	"github.com/edgenode/edgenode/internal/mxhttp"
	"github.com/edgenode/edgenode/node/core"
)

// putAlias answers PUT /directory/room/{roomAlias}. Only members of a room
// may point an alias at it, so nobody can squat names for rooms they are
// not in.
func (a *api) putAlias(w http.ResponseWriter, r *http.Request) error {
	dev := mxhttp.DeviceFrom(r)
	alias := r.PathValue("roomAlias")
	var req struct {
		RoomID string `json:"room_id"`
	}
	if err := mxhttp.DecodeJSON(r, 0, &req); err != nil {
		return err
	}
	if req.RoomID == "" {
		return mxhttp.MissingParam("missing room_id")
	}
	// Checked before membership so a bad alias is 400 whoever asks; the
	// node checks it again in full.
	if !strings.HasPrefix(alias, "#") || !strings.HasSuffix(alias, ":"+a.n.ServerName()) {
		return mxhttp.InvalidParam("room alias %q is not a local alias", alias)
	}
	if err := a.requireJoined(r, dev.UserID, req.RoomID); err != nil {
		return err
	}
	err := a.n.SetAlias(r.Context(), dev.UserID, alias, req.RoomID)
	if errors.Is(err, core.ErrRoomInUse) {
		// This endpoint's spec says 409 for a taken alias, where createRoom
		// says 400 M_ROOM_IN_USE (ToMatrix's general mapping).
		return mxhttp.Errorf(http.StatusConflict, "M_UNKNOWN", "room alias %s already exists", alias)
	}
	if err != nil {
		return err
	}
	return writeOK(w)
}

// getAlias answers GET /directory/room/{roomAlias}: a local alias from the
// node, another server's alias asked of that server (node.LookupAlias).
func (a *api) getAlias(w http.ResponseWriter, r *http.Request) error {
	alias := r.PathValue("roomAlias")
	if !strings.HasPrefix(alias, "#") || !strings.Contains(alias, ":") {
		return mxhttp.InvalidParam("invalid room alias %q", alias)
	}
	ra, err := a.n.LookupAlias(r.Context(), alias)
	if err != nil {
		return err
	}
	mxhttp.WriteJSON(w, http.StatusOK, ra)
	return nil
}

// deleteAlias answers DELETE /directory/room/{roomAlias}; the node allows
// the alias's creator and room moderators.
func (a *api) deleteAlias(w http.ResponseWriter, r *http.Request) error {
	dev := mxhttp.DeviceFrom(r)
	if err := a.n.DeleteAlias(r.Context(), dev.UserID, r.PathValue("roomAlias")); err != nil {
		return err
	}
	return writeOK(w)
}

// roomAliases answers GET /rooms/{roomId}/aliases, for members only.
func (a *api) roomAliases(w http.ResponseWriter, r *http.Request) error {
	dev := mxhttp.DeviceFrom(r)
	roomID := r.PathValue("roomId")
	if err := a.requireJoined(r, dev.UserID, roomID); err != nil {
		return err
	}
	aliases, err := a.n.RoomAliases(r.Context(), roomID)
	if err != nil {
		return err
	}
	if aliases == nil {
		aliases = []string{}
	}
	mxhttp.WriteJSON(w, http.StatusOK, map[string][]string{"aliases": aliases})
	return nil
}
