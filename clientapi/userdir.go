package clientapi

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"time"

	"github.com/edgenode/edgenode/internal/mxhttp"
	"github.com/edgenode/edgenode/node/userdir"
)

// userDirectory is the user directory (node/userdir).
type userDirectory interface {
	SearchUserDirectory(ctx context.Context, searcher, term string, limit int) (userdir.Results, error)
}

// Bounds on a user directory search request: a search term is what a
// person types into an invite dialog, not a document.
const (
	maxUserSearchBody = 4 << 10
	maxSearchTermLen  = 1000 // bytes
	// searchRetry is the retry_after_ms of a search refused because others
	// are running: one search takes milliseconds.
	searchRetry = 100 * time.Millisecond
)

// searchUserDirectory answers POST /user_directory/search.
func (a *api) searchUserDirectory(w http.ResponseWriter, r *http.Request) error {
	var body struct {
		SearchTerm *string         `json:"search_term"`
		Limit      json.RawMessage `json:"limit"`
	}
	if err := mxhttp.DecodeJSON(r, maxUserSearchBody, &body); err != nil {
		return err
	}
	if body.SearchTerm == nil {
		return mxhttp.MissingParam("missing search_term")
	}
	if len(*body.SearchTerm) > maxSearchTermLen {
		return mxhttp.InvalidParam("search_term over %d bytes", maxSearchTermLen)
	}
	limit := userdir.DefaultLimit
	if len(body.Limit) > 0 && string(body.Limit) != "null" {
		// A number of any size is clamped (Synapse does the same); a
		// fraction or another type is not a limit.
		var f float64
		if err := json.Unmarshal(body.Limit, &f); err != nil || math.Trunc(f) != f {
			return mxhttp.BadJSON("limit must be an integer")
		}
		limit = int(max(0, min(f, userdir.MaxLimit)))
	}
	res, err := a.n.SearchUserDirectory(r.Context(), mxhttp.DeviceFrom(r).UserID, *body.SearchTerm, limit)
	if errors.Is(err, userdir.ErrBusy) {
		return mxhttp.LimitExceeded(searchRetry, "too many user directory searches at once")
	}
	if err != nil {
		return err
	}
	mxhttp.WriteJSON(w, http.StatusOK, res)
	return nil
}
