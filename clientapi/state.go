package clientapi

import (
	"encoding/json"
	"net/http"

	"github.com/edgenode/edgenode/internal/mxhttp"
	"github.com/edgenode/edgenode/node/core"
)

// getState answers GET /rooms/{roomId}/state: every state event the user
// may read (the current state while joined, the state at leaving after).
func (a *api) getState(w http.ResponseWriter, r *http.Request) error {
	dev := mxhttp.DeviceFrom(r)
	evs, err := a.n.RoomState(r.Context(), dev.UserID, r.PathValue("roomId"))
	if err != nil {
		return err
	}
	mxhttp.WriteJSON(w, http.StatusOK, clientEvents(evs, dev))
	return nil
}

// getStateEvent answers GET /rooms/{roomId}/state/{eventType}/{stateKey}
// (the state key may be empty, with or without the trailing slash). By
// default only the content is returned; ?format=event gives the event.
func (a *api) getStateEvent(w http.ResponseWriter, r *http.Request) error {
	dev := mxhttp.DeviceFrom(r)
	format := r.URL.Query().Get("format")
	if format != "" && format != "content" && format != "event" {
		return mxhttp.InvalidParam("format must be content or event")
	}
	ev, err := a.n.RoomStateEvent(r.Context(), dev.UserID, r.PathValue("roomId"), r.PathValue("eventType"), r.PathValue("stateKey"))
	if err != nil {
		return err
	}
	ce := clientEvent(ev, dev)
	if format == "event" {
		mxhttp.WriteJSON(w, http.StatusOK, ce)
		return nil
	}
	mxhttp.WriteJSON(w, http.StatusOK, ce.Content)
	return nil
}

// putStateEvent answers PUT /rooms/{roomId}/state/{eventType}/{stateKey}.
// Power levels and membership are the node's auth rules' business (403).
func (a *api) putStateEvent(w http.ResponseWriter, r *http.Request) error {
	dev := mxhttp.DeviceFrom(r)
	raw, err := mxhttp.ReadBody(r, maxContentBytes)
	if err != nil {
		return err
	}
	stateKey := r.PathValue("stateKey")
	sticky, err := stickyDuration(r)
	if err != nil {
		return err
	}
	eventID, err := a.n.SendEvent(r.Context(), core.SendRequest{
		Sender: dev.UserID, DeviceID: dev.DeviceID, RoomID: r.PathValue("roomId"),
		Type: r.PathValue("eventType"), StateKey: &stateKey, Content: json.RawMessage(raw),
		StickyDurationMS: sticky,
	})
	if err != nil {
		return err
	}
	mxhttp.WriteJSON(w, http.StatusOK, map[string]string{"event_id": eventID})
	return nil
}
