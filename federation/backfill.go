package federation

import (
	"net/http"
	"strconv"

	"github.com/edgenode/edgenode/internal/mxhttp"
	"github.com/edgenode/edgenode/node/inbound"
)

// maxBackfillFrom caps the v parameters of one /backfill request.
const maxBackfillFrom = 100

// backfill is GET /_matrix/federation/v1/backfill/{roomId}?v=...&limit=:
// the events from the v events back, newest first (node.Backfill: at most
// inbound.MaxBackfill, only those the requesting server may see).
func (h *handler) backfill(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	from := q["v"]
	if len(from) == 0 {
		return mxhttp.MissingParam("v is required")
	}
	if len(from) > maxBackfillFrom {
		return mxhttp.InvalidParam("too many v parameters")
	}
	ls := q.Get("limit")
	if ls == "" {
		return mxhttp.MissingParam("limit is required")
	}
	limit, err := strconv.Atoi(ls)
	if err != nil || limit < 1 {
		return mxhttp.InvalidParam("limit must be a positive integer")
	}
	limit = min(limit, inbound.MaxBackfill)
	pdus, err := h.n.Backfill(r.Context(), string(fedRequest(r).origin), r.PathValue("roomId"), from, limit)
	if err != nil {
		return err
	}
	mxhttp.WriteJSON(w, http.StatusOK, h.transaction(pdus))
	return nil
}
