package clientapi

import (
	"net/http"

	"github.com/edgenode/edgenode/node/core"
)

// Query parameters that make a sent event sticky (MSC4354): the stable name
// and the unstable one clients use today.
const (
	paramStickyDuration         = "sticky_duration_ms"
	paramStickyDurationUnstable = "org.matrix.msc4354.sticky_duration_ms"
)

// stickyDuration reads the sticky duration of PUT /send and PUT /state: nil
// when neither parameter is given; the stable name wins when both are. A bad
// value is core.ErrInvalidParam (400 M_INVALID_PARAM).
func stickyDuration(r *http.Request) (*int64, error) {
	q := r.URL.Query()
	for _, name := range []string{paramStickyDuration, paramStickyDurationUnstable} {
		if !q.Has(name) {
			continue
		}
		d, err := core.ParseStickyDuration(q.Get(name))
		if err != nil {
			return nil, err
		}
		return &d, nil
	}
	return nil, nil
}
