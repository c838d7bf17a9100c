package clientapi

import (
	"net/http"
	"time"

	"github.com/edgenode/edgenode/internal/mxhttp"
)

// putTyping answers PUT /rooms/{roomId}/typing/{userId}: {typing, timeout}.
// A user may only say that they themselves type. The node caps the timeout
// and picks one when it is absent.
func (a *api) putTyping(w http.ResponseWriter, r *http.Request) error {
	userID := r.PathValue("userId")
	if err := requireSelf(r, userID); err != nil {
		return err
	}
	var body struct {
		Typing  *bool  `json:"typing"`
		Timeout *int64 `json:"timeout"`
	}
	if err := mxhttp.DecodeJSON(r, 0, &body); err != nil {
		return err
	}
	if body.Typing == nil {
		return mxhttp.MissingParam("missing typing")
	}
	var timeout time.Duration
	if body.Timeout != nil && *body.Timeout > 0 {
		// Saturate rather than overflow; the node caps it anyway.
		timeout = time.Duration(min(*body.Timeout, int64(time.Hour/time.Millisecond))) * time.Millisecond
	}
	if err := a.n.SetTyping(r.Context(), userID, r.PathValue("roomId"), *body.Typing, timeout); err != nil {
		return err
	}
	return writeOK(w)
}
