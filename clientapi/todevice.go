package clientapi

import (
	"encoding/json"
	"net/http"

	"github.com/edgenode/edgenode/internal/mxhttp"
)

// maxToDeviceBody caps a sendToDevice body. Sharing a room key with a
// large room sends one Olm message (about 2 KiB) per device, and clients
// batch a few hundred devices a request, which the default limit would
// refuse.
const maxToDeviceBody = 4 << 20

// sendToDevice answers PUT /sendToDevice/{eventType}/{txnId}. The node
// makes it idempotent per device and transaction ID.
func (a *api) sendToDevice(w http.ResponseWriter, r *http.Request) error {
	dev := mxhttp.DeviceFrom(r)
	var req struct {
		Messages map[string]map[string]json.RawMessage `json:"messages"`
	}
	if err := mxhttp.DecodeJSON(r, maxToDeviceBody, &req); err != nil {
		return err
	}
	if req.Messages == nil {
		return mxhttp.MissingParam("missing messages")
	}
	err := a.n.SendToDevice(r.Context(), dev.UserID, dev.DeviceID, r.PathValue("eventType"), r.PathValue("txnId"), req.Messages)
	if err != nil {
		return err
	}
	return writeOK(w)
}
