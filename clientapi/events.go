package clientapi

import (
	"fmt"
	"net/http"

	"github.com/edgenode/edgenode/internal/mxhttp"
	"github.com/edgenode/edgenode/node"
	"github.com/edgenode/edgenode/node/core"
)

// clientEvents renders events for the device that asked, so the sending
// device sees its own transaction IDs.
func clientEvents(evs []*core.Event, dev node.Device) []core.ClientEvent {
	out := make([]core.ClientEvent, 0, len(evs))
	for _, ev := range evs {
		out = append(out, clientEvent(ev, dev))
	}
	return out
}

func clientEvent(ev *core.Event, dev node.Device) core.ClientEvent {
	return ev.ClientEvent(core.ClientFormat{ForUser: dev.UserID, ForDevice: dev.DeviceID})
}

// getEvent answers GET /rooms/{roomId}/event/{eventId}. An event the user
// may not see, or one from another room, is 404 like a missing one, so the
// answer reveals nothing.
func (a *api) getEvent(w http.ResponseWriter, r *http.Request) error {
	dev := mxhttp.DeviceFrom(r)
	roomID, eventID := r.PathValue("roomId"), r.PathValue("eventId")
	ev, err := a.n.Event(r.Context(), dev.UserID, eventID)
	if err != nil {
		return err
	}
	if ev.PDU.RoomID().String() != roomID {
		return fmt.Errorf("event %s in room %s: %w", eventID, roomID, core.ErrNotFound)
	}
	bundles, err := a.n.Bundle(r.Context(), dev.UserID, []*core.Event{ev})
	if err != nil {
		return err
	}
	mxhttp.WriteJSON(w, http.StatusOK, ev.ClientEvent(core.ClientFormat{ForUser: dev.UserID, ForDevice: dev.DeviceID, Bundles: bundles}))
	return nil
}
