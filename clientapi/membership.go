package clientapi

import (
	"net/http"
	"strings"

	"github.com/edgenode/edgenode/internal/mxhttp"
	"github.com/edgenode/edgenode/node/core"
)

// Membership values of m.room.member events. Spelled out here rather than
// taken from gomatrixserverlib: clientapi depends on node only.
const (
	memberJoin   = "join"
	memberInvite = "invite"
	memberLeave  = "leave"
	memberBan    = "ban"
)

// membershipRequest is the body shared by the membership endpoints; which
// fields are required depends on the endpoint.
type membershipRequest struct {
	UserID string `json:"user_id"`
	Reason string `json:"reason"`
}

// decodeMembership reads a membership body; withTarget requires user_id.
func decodeMembership(r *http.Request, withTarget bool) (membershipRequest, error) {
	var req membershipRequest
	if err := mxhttp.DecodeJSON(r, 0, &req); err != nil {
		return req, err
	}
	if withTarget && req.UserID == "" {
		return req, mxhttp.MissingParam("missing user_id")
	}
	return req, nil
}

// joinByIDOrAlias answers POST /join/{roomIdOrAlias}. A room this node does
// not have is joined over federation through the server_name (and via)
// servers, or the room ID's server. Another server's alias is resolved by
// that server, and the servers it names are tried after the given ones.
func (a *api) joinByIDOrAlias(w http.ResponseWriter, r *http.Request) error {
	target := r.PathValue("roomIdOrAlias")
	roomID := target
	q := r.URL.Query()
	servers := append(q["server_name"], q["via"]...)
	switch {
	case strings.HasPrefix(target, "#"):
		ra, err := a.n.LookupAlias(r.Context(), target)
		if err != nil {
			return err
		}
		roomID, servers = ra.RoomID, append(servers, ra.Servers...)
	case !strings.HasPrefix(target, "!"):
		return mxhttp.InvalidParam("%q is neither a room ID nor a room alias", target)
	}
	return a.joinRoomID(w, r, roomID, servers)
}

// joinRoom answers POST /rooms/{roomId}/join; a room this node does not have
// is joined through the room ID's server.
func (a *api) joinRoom(w http.ResponseWriter, r *http.Request) error {
	return a.joinRoomID(w, r, r.PathValue("roomId"), nil)
}

func (a *api) joinRoomID(w http.ResponseWriter, r *http.Request, roomID string, servers []string) error {
	req, err := decodeMembership(r, false)
	if err != nil {
		return err
	}
	dev := mxhttp.DeviceFrom(r)
	if _, err := a.n.ChangeMembership(r.Context(), core.MembershipChange{
		Sender: dev.UserID, DeviceID: dev.DeviceID, RoomID: roomID, Target: dev.UserID,
		Membership: memberJoin, Reason: req.Reason, Servers: servers,
	}); err != nil {
		return err
	}
	mxhttp.WriteJSON(w, http.StatusOK, map[string]string{"room_id": roomID})
	return nil
}

// invite answers POST /rooms/{roomId}/invite. The auth rules refuse an
// invite of someone already joined or banned (403).
func (a *api) invite(w http.ResponseWriter, r *http.Request) error {
	return a.changeMembership(w, r, memberInvite)
}

// leave answers POST /rooms/{roomId}/leave (also how an invite is declined).
// The auth library accepts leave after leave (a Synapse compatibility
// leniency), which would let anyone who knows a room ID put leave events
// into it: a user who never had a membership is refused, and leaving twice
// is a no-op.
func (a *api) leave(w http.ResponseWriter, r *http.Request) error {
	req, err := decodeMembership(r, false)
	if err != nil {
		return err
	}
	dev := mxhttp.DeviceFrom(r)
	roomID := r.PathValue("roomId")
	current, err := a.n.Membership(r.Context(), roomID, dev.UserID)
	if err != nil {
		return err
	}
	switch current.Membership {
	case "":
		return mxhttp.Forbidden("you are not in %s", roomID)
	case memberLeave:
		return writeOK(w)
	}
	req.UserID = dev.UserID
	return a.sendMembership(w, r, roomID, req, memberLeave)
}

// ban answers POST /rooms/{roomId}/ban.
func (a *api) ban(w http.ResponseWriter, r *http.Request) error {
	return a.changeMembership(w, r, memberBan)
}

// kick answers POST /rooms/{roomId}/kick. A kick is a leave sent for someone
// else; it must not double as an unban, which has its own endpoint, and a
// user who is not in the room has nothing to be kicked from (the auth rules
// would let a moderator put pointless leave events into the room).
func (a *api) kick(w http.ResponseWriter, r *http.Request) error {
	req, err := decodeMembership(r, true)
	if err != nil {
		return err
	}
	roomID := r.PathValue("roomId")
	current, err := a.n.Membership(r.Context(), roomID, req.UserID)
	if err != nil {
		return err
	}
	switch current.Membership {
	case memberBan:
		return mxhttp.Forbidden("%s is banned: use unban", req.UserID)
	case "", memberLeave:
		return mxhttp.Forbidden("%s is not in the room", req.UserID)
	}
	return a.sendMembership(w, r, roomID, req, memberLeave)
}

// unban answers POST /rooms/{roomId}/unban.
func (a *api) unban(w http.ResponseWriter, r *http.Request) error {
	req, err := decodeMembership(r, true)
	if err != nil {
		return err
	}
	dev := mxhttp.DeviceFrom(r)
	if _, err := a.n.Unban(r.Context(), core.MembershipChange{
		Sender: dev.UserID, DeviceID: dev.DeviceID, RoomID: r.PathValue("roomId"), Target: req.UserID, Reason: req.Reason,
	}); err != nil {
		return err
	}
	return writeOK(w)
}

// forget answers POST /rooms/{roomId}/forget. A user still in the room is
// 400 M_UNKNOWN, as the spec's example has it (the node's ErrBadInput would
// say M_BAD_JSON, which is misleading here).
func (a *api) forget(w http.ResponseWriter, r *http.Request) error {
	dev := mxhttp.DeviceFrom(r)
	roomID := r.PathValue("roomId")
	current, err := a.n.Membership(r.Context(), roomID, dev.UserID)
	if err != nil {
		return err
	}
	if current.Membership == memberJoin || current.Membership == memberInvite {
		return mxhttp.Errorf(http.StatusBadRequest, "M_UNKNOWN", "leave %s before forgetting it", roomID)
	}
	if err := a.n.Forget(r.Context(), dev.UserID, roomID); err != nil {
		return err
	}
	return writeOK(w)
}

// changeMembership reads the body and sends a membership event for its
// user_id.
func (a *api) changeMembership(w http.ResponseWriter, r *http.Request, membership string) error {
	req, err := decodeMembership(r, true)
	if err != nil {
		return err
	}
	return a.sendMembership(w, r, r.PathValue("roomId"), req, membership)
}

func (a *api) sendMembership(w http.ResponseWriter, r *http.Request, roomID string, req membershipRequest, membership string) error {
	dev := mxhttp.DeviceFrom(r)
	if _, err := a.n.ChangeMembership(r.Context(), core.MembershipChange{
		Sender: dev.UserID, DeviceID: dev.DeviceID, RoomID: roomID, Target: req.UserID,
		Membership: membership, Reason: req.Reason,
	}); err != nil {
		return err
	}
	return writeOK(w)
}
