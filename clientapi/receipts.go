package clientapi

import (
	"encoding/json"
	"net/http"

	"github.com/edgenode/edgenode/internal/mxhttp"
	"github.com/edgenode/edgenode/node"
)

// postReceipt answers POST /rooms/{roomId}/receipt/{receiptType}/{eventId}.
// m.fully_read is accepted here as the spec allows, and moves the read
// marker as /read_markers does. The body may name a thread.
func (a *api) postReceipt(w http.ResponseWriter, r *http.Request) error {
	dev := mxhttp.DeviceFrom(r)
	roomID, receiptType, eventID := r.PathValue("roomId"), r.PathValue("receiptType"), r.PathValue("eventId")
	switch receiptType {
	case node.ReceiptRead, node.ReceiptReadPrivate, node.ReceiptFullyRead:
	default:
		return mxhttp.InvalidParam("receipt type must be m.read, m.read.private or m.fully_read")
	}
	raw, err := mxhttp.ReadBody(r, 0)
	if err != nil {
		return err
	}
	var body struct {
		ThreadID json.RawMessage `json:"thread_id"`
	}
	if err := mxhttp.UnmarshalBody(raw, &body); err != nil {
		return err
	}
	var threadID string
	if body.ThreadID != nil {
		if json.Unmarshal(body.ThreadID, &threadID) != nil || threadID == "" {
			return mxhttp.InvalidParam("thread_id must be a non-empty string")
		}
		if receiptType == node.ReceiptFullyRead {
			return mxhttp.InvalidParam("m.fully_read does not take a thread_id")
		}
	}
	if receiptType == node.ReceiptFullyRead {
		err = a.n.SetReadMarkers(r.Context(), dev.UserID, roomID, eventID, "", "")
	} else {
		err = a.n.SetReceipt(r.Context(), dev.UserID, roomID, receiptType, eventID, threadID)
	}
	if err != nil {
		return err
	}
	return writeOK(w)
}

// postReadMarkers answers POST /rooms/{roomId}/read_markers: any of the read
// marker, the public and the private read receipt, each optional.
func (a *api) postReadMarkers(w http.ResponseWriter, r *http.Request) error {
	dev := mxhttp.DeviceFrom(r)
	var body struct {
		FullyRead   string `json:"m.fully_read"`
		Read        string `json:"m.read"`
		ReadPrivate string `json:"m.read.private"`
	}
	if err := mxhttp.DecodeJSON(r, 0, &body); err != nil {
		return err
	}
	if err := a.n.SetReadMarkers(r.Context(), dev.UserID, r.PathValue("roomId"), body.FullyRead, body.Read, body.ReadPrivate); err != nil {
		return err
	}
	return writeOK(w)
}
