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

// makeJoin is GET /_matrix/federation/v1/make_join/{roomId}/{userId}: a join
// template for a user of the requesting server. The room versions the
// requester supports are its ver parameters ("1" when there are none, as
// the spec says).
func (h *handler) makeJoin(w http.ResponseWriter, r *http.Request) error {
	roomID, userID := r.PathValue("roomId"), r.PathValue("userId")
	if err := checkOriginUser(r, userID); err != nil {
		return err
	}
	versions := r.URL.Query()["ver"]
	if len(versions) == 0 {
		versions = []string{"1"}
	}
	tmpl, err := h.n.MakeJoin(r.Context(), roomID, userID, versions)
	var incompatible *inbound.IncompatibleRoomVersionError
	if errors.As(err, &incompatible) {
		e := mxhttp.Errorf(http.StatusBadRequest, "M_INCOMPATIBLE_ROOM_VERSION", "%v", err)
		e.Extra = map[string]any{"room_version": incompatible.RoomVersion}
		return e
	}
	if err != nil {
		return err
	}
	mxhttp.WriteJSON(w, http.StatusOK, fclient.RespMakeJoin{JoinEvent: tmpl.Event, RoomVersion: tmpl.RoomVersion})
	return nil
}

// sendJoin is PUT /_matrix/federation/v2/send_join/{roomId}/{eventId}: a
// signed join of a user of the requesting server, input through the room
// pipeline; the answer is the room's state before the join and its auth
// chain.
func (h *handler) sendJoin(w http.ResponseWriter, r *http.Request) error {
	fr := fedRequest(r)
	if len(fr.content) == 0 {
		return mxhttp.NotJSON("missing body")
	}
	res, err := h.n.SendJoin(r.Context(), string(fr.origin), r.PathValue("roomId"), r.PathValue("eventId"), fr.content)
	if err != nil {
		return err
	}
	out := fclient.RespSendJoin{
		StateEvents: rawJSONs(res.State),
		AuthEvents:  rawJSONs(res.AuthChain),
		Origin:      spec.ServerName(h.n.ServerName()),
		Event:       spec.RawJSON(res.Event),
	}
	mxhttp.WriteJSON(w, http.StatusOK, out)
	return nil
}

func rawJSONs(in []json.RawMessage) gomatrixserverlib.EventJSONs {
	out := make(gomatrixserverlib.EventJSONs, len(in))
	for i, j := range in {
		out[i] = spec.RawJSON(j)
	}
	return out
}

var _ inbound.RemoteJoiner = (*Client)(nil)

// MakeJoin asks server for a join template for userID in roomID (offering
// the room versions the node supports). It implements inbound.RemoteJoiner.
func (c *Client) MakeJoin(ctx context.Context, server, roomID, userID string) (gomatrixserverlib.ProtoEvent, gomatrixserverlib.RoomVersion, error) {
	if err := c.checkServer(server); err != nil {
		return gomatrixserverlib.ProtoEvent{}, "", err
	}
	res, err := c.fc.MakeJoin(c.ctx(ctx), spec.ServerName(c.n.ServerName()), spec.ServerName(server), roomID, userID)
	if err != nil {
		return gomatrixserverlib.ProtoEvent{}, "", fmt.Errorf("federation: make_join %s on %s: %w", roomID, server, nodeError(err))
	}
	return res.JoinEvent, res.RoomVersion, nil
}

// SendJoin sends a signed join to server and returns the state before it and
// its auth chain. It implements inbound.RemoteJoiner.
func (c *Client) SendJoin(ctx context.Context, server string, join gomatrixserverlib.PDU) (inbound.RemoteJoinState, error) {
	if err := c.checkServer(server); err != nil {
		return inbound.RemoteJoinState{}, err
	}
	res, err := c.fc.SendJoin(c.ctx(ctx), spec.ServerName(c.n.ServerName()), spec.ServerName(server), join)
	if err != nil {
		return inbound.RemoteJoinState{}, fmt.Errorf("federation: send_join %s to %s: %w", join.EventID(), server, nodeError(err))
	}
	out := inbound.RemoteJoinState{
		State:     make([]json.RawMessage, len(res.StateEvents)),
		AuthChain: make([]json.RawMessage, len(res.AuthEvents)),
	}
	for i, e := range res.StateEvents {
		out.State[i] = json.RawMessage(e)
	}
	for i, e := range res.AuthEvents {
		out.AuthChain[i] = json.RawMessage(e)
	}
	return out, nil
}
