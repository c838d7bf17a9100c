package clientapi

import (
	"encoding/json"
	"net/http"

	"github.com/edgenode/edgenode/internal/mxhttp"
	"github.com/edgenode/edgenode/node/core"
)

// typeRedaction is the event type /send hands to the redaction path.
const typeRedaction = "m.room.redaction"

// redactRequest is the body of PUT /redact, and the part of an
// m.room.redaction's content that /send looks at.
type redactRequest struct {
	Redacts string `json:"redacts"`
	Reason  string `json:"reason"`
}

// send answers PUT /rooms/{roomId}/send/{eventType}/{txnId}. The node makes
// the call idempotent per device, path and transaction ID: a retry gets the
// first event's ID and nothing new is stored.
func (a *api) send(w http.ResponseWriter, r *http.Request) error {
	dev := mxhttp.DeviceFrom(r)
	raw, err := mxhttp.ReadBody(r, maxContentBytes)
	if err != nil {
		return err
	}
	roomID, evType, txnID := r.PathValue("roomId"), r.PathValue("eventType"), r.PathValue("txnId")
	sticky, err := stickyDuration(r)
	if err != nil {
		return err
	}
	var eventID string
	if evType == typeRedaction {
		// Since v1.18 /send must accept redactions too; they take the same
		// permission checks as /redact.
		var req redactRequest
		if err := mxhttp.UnmarshalBody(raw, &req); err != nil {
			return err
		}
		if req.Redacts == "" {
			return mxhttp.MissingParam("missing content.redacts")
		}
		eventID, err = a.n.Redact(r.Context(), core.RedactRequest{
			Sender: dev.UserID, DeviceID: dev.DeviceID, RoomID: roomID, EventID: req.Redacts, Reason: req.Reason,
			TxnID: txnID, TxnScope: core.SendTxn(roomID, evType),
		})
	} else {
		eventID, err = a.n.SendEvent(r.Context(), core.SendRequest{
			Sender: dev.UserID, DeviceID: dev.DeviceID, RoomID: roomID, Type: evType,
			Content: json.RawMessage(raw), TxnID: txnID, TxnScope: core.SendTxn(roomID, evType), StickyDurationMS: sticky,
		})
	}
	if err != nil {
		return err
	}
	mxhttp.WriteJSON(w, http.StatusOK, map[string]string{"event_id": eventID})
	return nil
}

// redact answers PUT /rooms/{roomId}/redact/{eventId}/{txnId}.
func (a *api) redact(w http.ResponseWriter, r *http.Request) error {
	dev := mxhttp.DeviceFrom(r)
	var req redactRequest
	if err := mxhttp.DecodeJSON(r, maxContentBytes, &req); err != nil {
		return err
	}
	roomID, target := r.PathValue("roomId"), r.PathValue("eventId")
	eventID, err := a.n.Redact(r.Context(), core.RedactRequest{
		Sender: dev.UserID, DeviceID: dev.DeviceID, RoomID: roomID, EventID: target, Reason: req.Reason,
		TxnID: r.PathValue("txnId"), TxnScope: core.RedactTxn(roomID, target),
	})
	if err != nil {
		return err
	}
	mxhttp.WriteJSON(w, http.StatusOK, map[string]string{"event_id": eventID})
	return nil
}
