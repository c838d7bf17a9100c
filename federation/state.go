package federation

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/edgenode/edgenode/internal/mxhttp"
	"github.com/matrix-org/gomatrixserverlib"
	"github.com/matrix-org/gomatrixserverlib/fclient"
	"github.com/matrix-org/gomatrixserverlib/spec"
)

// The inbound endpoints that read a room's state and events for another
// server (node.FederationState and friends check the requesting server's
// access: in the room, may see the event).

// state is GET /_matrix/federation/v1/state/{roomId}?event_id=: the state
// before the event and its auth chain, as full events.
func (h *handler) state(w http.ResponseWriter, r *http.Request) error {
	eventID := r.URL.Query().Get("event_id")
	if eventID == "" {
		return mxhttp.MissingParam("event_id is required")
	}
	res, err := h.n.FederationState(r.Context(), string(fedRequest(r).origin), r.PathValue("roomId"), eventID)
	if err != nil {
		return err
	}
	mxhttp.WriteJSON(w, http.StatusOK, fclient.RespState{StateEvents: rawJSONs(res.State), AuthEvents: rawJSONs(res.AuthChain)})
	return nil
}

// stateIDs is GET /_matrix/federation/v1/state_ids/{roomId}?event_id=: as
// state, with event IDs.
func (h *handler) stateIDs(w http.ResponseWriter, r *http.Request) error {
	eventID := r.URL.Query().Get("event_id")
	if eventID == "" {
		return mxhttp.MissingParam("event_id is required")
	}
	res, err := h.n.FederationStateIDs(r.Context(), string(fedRequest(r).origin), r.PathValue("roomId"), eventID)
	if err != nil {
		return err
	}
	out := fclient.RespStateIDs{StateEventIDs: res.StateIDs, AuthEventIDs: res.AuthChainIDs}
	if out.StateEventIDs == nil {
		out.StateEventIDs = []string{}
	}
	if out.AuthEventIDs == nil {
		out.AuthEventIDs = []string{}
	}
	mxhttp.WriteJSON(w, http.StatusOK, out)
	return nil
}

// event is GET /_matrix/federation/v1/event/{eventId}: one event, as a
// transaction with one PDU.
func (h *handler) event(w http.ResponseWriter, r *http.Request) error {
	j, err := h.n.FederationEvent(r.Context(), string(fedRequest(r).origin), r.PathValue("eventId"))
	if err != nil {
		return err
	}
	mxhttp.WriteJSON(w, http.StatusOK, h.transaction([]json.RawMessage{j}))
	return nil
}

// eventAuth is GET /_matrix/federation/v1/event_auth/{roomId}/{eventId}:
// the event's full auth chain.
func (h *handler) eventAuth(w http.ResponseWriter, r *http.Request) error {
	chain, err := h.n.FederationEventAuth(r.Context(), string(fedRequest(r).origin), r.PathValue("roomId"), r.PathValue("eventId"))
	if err != nil {
		return err
	}
	mxhttp.WriteJSON(w, http.StatusOK, fclient.RespEventAuth{AuthEvents: rawJSONs(chain)})
	return nil
}

// transaction wraps PDUs in the spec's Transaction shape (origin,
// origin_server_ts, pdus), which /event and /backfill answer with.
func (h *handler) transaction(pdus []json.RawMessage) gomatrixserverlib.Transaction {
	if pdus == nil {
		pdus = []json.RawMessage{}
	}
	return gomatrixserverlib.Transaction{
		Origin:         spec.ServerName(h.n.ServerName()),
		OriginServerTS: spec.AsTimestamp(time.Now()),
		PDUs:           pdus,
	}
}
