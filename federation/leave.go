package federation

import (
	"context"
	"fmt"
	"net/http"

	"github.com/edgenode/edgenode/internal/mxhttp"
	"github.com/edgenode/edgenode/node/inbound"
	"github.com/matrix-org/gomatrixserverlib"
	"github.com/matrix-org/gomatrixserverlib/fclient"
	"github.com/matrix-org/gomatrixserverlib/spec"
)

// makeLeave is GET /_matrix/federation/v1/make_leave/{roomId}/{userId}: a
// leave template for a user of the requesting server who is invited to the
// room or joined.
func (h *handler) makeLeave(w http.ResponseWriter, r *http.Request) error {
	roomID, userID := r.PathValue("roomId"), r.PathValue("userId")
	if err := checkOriginUser(r, userID); err != nil {
		return err
	}
	tmpl, err := h.n.MakeLeave(r.Context(), roomID, userID)
	if err != nil {
		return err
	}
	mxhttp.WriteJSON(w, http.StatusOK, fclient.RespMakeLeave{LeaveEvent: tmpl.Event, RoomVersion: tmpl.RoomVersion})
	return nil
}

// sendLeave is PUT /_matrix/federation/v2/send_leave/{roomId}/{eventId}: a
// signed leave of a user of the requesting server, input through the room
// pipeline. The answer is an empty object.
func (h *handler) sendLeave(w http.ResponseWriter, r *http.Request) error {
	fr := fedRequest(r)
	if len(fr.content) == 0 {
		return mxhttp.NotJSON("missing body")
	}
	if err := h.n.SendLeave(r.Context(), string(fr.origin), r.PathValue("roomId"), r.PathValue("eventId"), fr.content); err != nil {
		return err
	}
	mxhttp.WriteJSON(w, http.StatusOK, struct{}{})
	return nil
}

var _ inbound.RemoteLeaver = (*Client)(nil)

// MakeLeave asks server for a leave template for userID in roomID. It
// implements inbound.RemoteLeaver.
func (c *Client) MakeLeave(ctx context.Context, server, roomID, userID string) (gomatrixserverlib.ProtoEvent, gomatrixserverlib.RoomVersion, error) {
	if err := c.checkServer(server); err != nil {
		return gomatrixserverlib.ProtoEvent{}, "", err
	}
	res, err := c.fc.MakeLeave(c.ctx(ctx), spec.ServerName(c.n.ServerName()), spec.ServerName(server), roomID, userID)
	if err != nil {
		return gomatrixserverlib.ProtoEvent{}, "", fmt.Errorf("federation: make_leave %s on %s: %w", roomID, server, nodeError(err))
	}
	return res.LeaveEvent, res.RoomVersion, nil
}

// SendLeave sends a signed leave to server. It implements
// inbound.RemoteLeaver.
func (c *Client) SendLeave(ctx context.Context, server string, leave gomatrixserverlib.PDU) error {
	if err := c.checkServer(server); err != nil {
		return err
	}
	if err := c.fc.SendLeave(c.ctx(ctx), spec.ServerName(c.n.ServerName()), spec.ServerName(server), leave); err != nil {
		return fmt.Errorf("federation: send_leave %s to %s: %w", leave.EventID(), server, nodeError(err))
	}
	return nil
}
