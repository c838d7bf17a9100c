package clientapi

import (
	"net/http"

	"github.com/edgenode/edgenode/internal/mxhttp"
)

// pushRules answers GET /pushrules/. Rules are the spec's defaults: there is
// no push gateway on an embedded node, and clients evaluate these rules
// locally for notification counts and highlights. Changing rules is not
// supported yet.
func (a *api) pushRules(w http.ResponseWriter, r *http.Request) error {
	mxhttp.WriteJSON(w, http.StatusOK, map[string]any{
		"global": defaultPushRules(mxhttp.DeviceFrom(r).UserID),
	})
	return nil
}

// globalPushRules answers GET /pushrules/global/.
func (a *api) globalPushRules(w http.ResponseWriter, r *http.Request) error {
	mxhttp.WriteJSON(w, http.StatusOK, defaultPushRules(mxhttp.DeviceFrom(r).UserID))
	return nil
}
