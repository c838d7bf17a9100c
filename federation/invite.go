package federation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/edgenode/edgenode/internal/mxhttp"
	"github.com/edgenode/edgenode/node/inbound"
	"github.com/matrix-org/gomatrixserverlib"
	"github.com/matrix-org/gomatrixserverlib/fclient"
	"github.com/matrix-org/gomatrixserverlib/spec"
)

// inviteBody is the body of PUT /_matrix/federation/v2/invite.
type inviteBody struct {
	RoomVersion     string            `json:"room_version"`
	Event           json.RawMessage   `json:"event"`
	InviteRoomState []json.RawMessage `json:"invite_room_state"`
}

// invite is PUT /_matrix/federation/v2/invite/{roomId}/{eventId}: an invite
// of a local user, sent by a user of the requesting server, for this server
// to check and sign. The answer is the event with this server's signature
// added; the invitee sees the invite in /sync.
func (h *handler) invite(w http.ResponseWriter, r *http.Request) error {
	fr := fedRequest(r)
	if len(fr.content) == 0 {
		return mxhttp.NotJSON("missing body")
	}
	var body inviteBody
	if err := json.Unmarshal(fr.content, &body); err != nil {
		return mxhttp.BadJSON("invite body: %v", err)
	}
	switch {
	case body.RoomVersion == "":
		return mxhttp.MissingParam("missing room_version")
	case len(body.Event) == 0 || string(body.Event) == "null":
		return mxhttp.MissingParam("missing event")
	}
	signed, err := h.n.ReceiveInvite(r.Context(), inbound.InviteRequest{
		Origin: string(fr.origin), RoomID: r.PathValue("roomId"), EventID: r.PathValue("eventId"),
		RoomVersion: gomatrixserverlib.RoomVersion(body.RoomVersion), Event: body.Event, InviteRoomState: body.InviteRoomState,
	})
	if err != nil {
		return incompatibleVersion(err)
	}
	mxhttp.WriteJSON(w, http.StatusOK, fclient.RespInviteV2{Event: spec.RawJSON(signed)})
	return nil
}

// incompatibleVersion turns the node's *IncompatibleRoomVersionError into
// the spec's 400 M_INCOMPATIBLE_ROOM_VERSION naming the room's version, and
// returns any other error as it is.
func incompatibleVersion(err error) error {
	var incompatible *inbound.IncompatibleRoomVersionError
	if !errors.As(err, &incompatible) {
		return err
	}
	e := mxhttp.Errorf(http.StatusBadRequest, "M_INCOMPATIBLE_ROOM_VERSION", "%v", err)
	e.Extra = map[string]any{"room_version": incompatible.RoomVersion}
	return e
}

var _ inbound.RemoteInviter = (*Client)(nil)

// SendInvite asks server to sign an invite of one of its users (PUT
// /_matrix/federation/v2/invite) and returns the event it signed. It
// implements inbound.RemoteInviter.
func (c *Client) SendInvite(ctx context.Context, server string, invite gomatrixserverlib.PDU, state []gomatrixserverlib.InviteStrippedState) (json.RawMessage, error) {
	if err := c.checkServer(server); err != nil {
		return nil, err
	}
	req, err := fclient.NewInviteV2Request(invite, state)
	if err != nil {
		return nil, fmt.Errorf("federation: invite %s: %w", invite.EventID(), err)
	}
	res, err := c.fc.SendInviteV2(c.ctx(ctx), spec.ServerName(c.n.ServerName()), spec.ServerName(server), req)
	if err != nil {
		return nil, fmt.Errorf("federation: invite %s to %s: %w", invite.EventID(), server, nodeError(err))
	}
	return json.RawMessage(res.Event), nil
}
