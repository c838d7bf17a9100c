package syncapi

import (
	"bytes"
	"encoding/json"
	"net/http"

	"github.com/edgenode/edgenode/internal/mxhttp"
)

// postFilter serves POST /user/{userId}/filter: store a filter definition
// for later use by ID.
func (a *api) postFilter(w http.ResponseWriter, r *http.Request) error {
	dev, userID := mxhttp.DeviceFrom(r), r.PathValue("userId")
	if userID != dev.UserID {
		return mxhttp.Forbidden("you can only create filters for yourself")
	}
	raw, err := mxhttp.ReadBody(r, 0)
	if err != nil {
		return err
	}
	if _, err := ParseFilter(raw); err != nil {
		return err
	}
	// Store the body as the client sent it (compacted), so GET gives back
	// exactly what was uploaded, fields unknown to this server included.
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return mxhttp.NotJSON("body is not valid JSON")
	}
	id, err := a.n.SaveFilter(r.Context(), userID, buf.Bytes())
	if err != nil {
		return err
	}
	mxhttp.WriteJSON(w, http.StatusOK, map[string]string{"filter_id": id})
	return nil
}

// getFilter serves GET /user/{userId}/filter/{filterId}.
func (a *api) getFilter(w http.ResponseWriter, r *http.Request) error {
	dev, userID := mxhttp.DeviceFrom(r), r.PathValue("userId")
	if userID != dev.UserID {
		return mxhttp.Forbidden("you can only read your own filters")
	}
	// node.Filter answers ErrNotFound (404 M_NOT_FOUND) for unknown IDs.
	raw, err := a.n.Filter(r.Context(), userID, r.PathValue("filterId"))
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(raw)
	return nil
}
