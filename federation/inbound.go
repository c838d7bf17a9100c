package federation

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/edgenode/edgenode/internal/mxhttp"
	"github.com/edgenode/edgenode/node/inbound"
)

// Limits the spec sets on one transaction.
const (
	MaxTxnPDUs = 50
	MaxTxnEDUs = 100
)

// transaction is the body of PUT /_matrix/federation/v1/send/{txnId}.
type transaction struct {
	Origin         string            `json:"origin"`
	OriginServerTS int64             `json:"origin_server_ts"`
	PDUs           []json.RawMessage `json:"pdus"`
	EDUs           []json.RawMessage `json:"edus"`
}

// parseTransaction decodes and checks a /send body. Each PDU is left raw: a
// bad PDU is that PDU's error, never the transaction's.
func parseTransaction(body []byte) (*transaction, error) {
	if len(body) == 0 {
		return nil, mxhttp.NotJSON("missing body")
	}
	if !json.Valid(body) {
		return nil, mxhttp.NotJSON("body is not valid JSON")
	}
	var t transaction
	if err := json.Unmarshal(body, &t); err != nil {
		return nil, mxhttp.BadJSON("transaction: %v", err)
	}
	if t.Origin == "" {
		return nil, mxhttp.BadJSON("transaction: origin is required")
	}
	if t.PDUs == nil {
		return nil, mxhttp.BadJSON("transaction: pdus is required")
	}
	if len(t.PDUs) > MaxTxnPDUs || len(t.EDUs) > MaxTxnEDUs {
		return nil, mxhttp.BadJSON("transaction has %d PDUs and %d EDUs; at most %d and %d are allowed",
			len(t.PDUs), len(t.EDUs), MaxTxnPDUs, MaxTxnEDUs)
	}
	return &t, nil
}

// pduResult is one entry of the /send response's "pdus".
type pduResult struct {
	Error string `json:"error,omitempty"`
}

// send is PUT /_matrix/federation/v1/send/{txnId}: a transaction of PDUs and
// EDUs from the authenticated origin. PDUs go through node.InputFederatedPDUs;
// the response maps each PDU's event ID to {} or {"error": ...}. A PDU that
// cannot be parsed far enough to have an event ID is logged and left out.
// EDUs are applied after the PDUs (edu.go): a bad one is dropped, never the
// transaction's failure. A transaction ID already seen
// from the origin gets the stored response, without processing again.
func (h *handler) send(w http.ResponseWriter, r *http.Request) error {
	fr := fedRequest(r)
	txnID := r.PathValue("txnID")
	t, err := parseTransaction(fr.content)
	if err != nil {
		return err
	}
	if t.Origin != string(fr.origin) {
		return mxhttp.Forbidden("transaction origin %q is not the request's origin %s", t.Origin, fr.origin)
	}
	origin := string(fr.origin)
	resp, err := h.n.InboundTxn(r.Context(), origin, txnID, func(ctx context.Context) ([]byte, bool, error) {
		results, err := h.n.InputFederatedPDUs(ctx, inbound.FederatedInput{Origin: origin, PDUs: t.PDUs})
		if err != nil {
			return nil, false, err
		}
		// Remembered on disk only if it changed something: an event taken
		// in, or an EDU applied (node.InboundTxn).
		durable := false
		out := map[string]pduResult{}
		for i, res := range results {
			if res.EventID != "" && res.Err == nil {
				durable = true
			}
			if res.EventID == "" {
				h.log.Debug("dropped unparseable PDU", "origin", origin, "txn_id", txnID, "index", i, "room_id", res.RoomID, "error", res.Err)
				continue
			}
			if res.Err != nil {
				h.log.Debug("inbound PDU not accepted", "origin", origin, "event_id", res.EventID, "error", res.Err)
				out[res.EventID] = pduResult{Error: res.Err.Error()}
			} else if _, ok := out[res.EventID]; !ok {
				out[res.EventID] = pduResult{}
			}
		}
		applied, err := h.applyEDUs(ctx, origin, txnID, t.EDUs)
		if err != nil {
			return nil, false, err
		}
		durable = durable || applied
		resp, err := json.Marshal(map[string]any{"pdus": out})
		return resp, durable, err
	})
	if err != nil {
		return fmt.Errorf("federation: transaction %s from %s: %w", txnID, origin, err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(resp)
	return nil
}
