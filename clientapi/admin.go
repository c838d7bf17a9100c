package clientapi

import (
	"fmt"
	"net/http"

	"github.com/edgenode/edgenode/internal/mxhttp"
	"github.com/edgenode/edgenode/node/core"
)

// adminPrefix is where edgenode's own admin endpoints live, beside the
// client API (Synapse's are under /_synapse/admin; these are ours).
const adminPrefix = "/_matrix/client/v1/admin/edgenode"

// requireAdmin fails with core.ErrForbidden (403 M_FORBIDDEN) unless the
// caller is an administrator account.
func (a *api) requireAdmin(r *http.Request) error {
	dev := mxhttp.DeviceFrom(r)
	ok, err := a.n.IsAdmin(r.Context(), dev.UserID)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%w: %s is not an administrator", core.ErrForbidden, dev.UserID)
	}
	return nil
}

// adminSticky is GET .../admin/edgenode/sticky: live sticky events per room
// and this server's sticky events pending delivery per destination
// (node.StickyStats), as {"rooms": {...}, "destinations": {...}}.
func (a *api) adminSticky(w http.ResponseWriter, r *http.Request) error {
	if err := a.requireAdmin(r); err != nil {
		return err
	}
	st, err := a.n.StickyStats(r.Context())
	if err != nil {
		return err
	}
	mxhttp.WriteJSON(w, http.StatusOK, st)
	return nil
}
