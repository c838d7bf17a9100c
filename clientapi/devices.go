package clientapi

import (
	"errors"
	"net/http"

	"github.com/edgenode/edgenode/internal/mxhttp"
	"github.com/edgenode/edgenode/node"
	"github.com/edgenode/edgenode/node/core"
)

// deviceJSON is a device as the client API shows it.
type deviceJSON struct {
	DeviceID    string `json:"device_id"`
	DisplayName string `json:"display_name,omitempty"`
	LastSeenTS  int64  `json:"last_seen_ts,omitempty"`
}

func toDeviceJSON(d node.Device) deviceJSON {
	return deviceJSON{DeviceID: d.DeviceID, DisplayName: d.DisplayName, LastSeenTS: d.LastSeenTS}
}

// listDevices answers GET /devices.
func (a *api) listDevices(w http.ResponseWriter, r *http.Request) error {
	dev := mxhttp.DeviceFrom(r)
	devs, err := a.n.Devices(r.Context(), dev.UserID)
	if err != nil {
		return err
	}
	out := make([]deviceJSON, 0, len(devs))
	for _, d := range devs {
		out = append(out, toDeviceJSON(d))
	}
	mxhttp.WriteJSON(w, http.StatusOK, map[string]any{"devices": out})
	return nil
}

// getDevice answers GET /devices/{deviceId}.
func (a *api) getDevice(w http.ResponseWriter, r *http.Request) error {
	dev := mxhttp.DeviceFrom(r)
	d, err := a.n.Device(r.Context(), dev.UserID, r.PathValue("deviceId"))
	if err != nil {
		return err
	}
	mxhttp.WriteJSON(w, http.StatusOK, toDeviceJSON(d))
	return nil
}

// updateDevice answers PUT /devices/{deviceId}. Creating devices this way is
// for application services only, which this node does not have, so an
// unknown device is 404.
func (a *api) updateDevice(w http.ResponseWriter, r *http.Request) error {
	dev := mxhttp.DeviceFrom(r)
	var req struct {
		DisplayName *string `json:"display_name"`
	}
	if err := mxhttp.DecodeJSON(r, 0, &req); err != nil {
		return err
	}
	deviceID := r.PathValue("deviceId")
	if req.DisplayName == nil {
		_, err := a.n.Device(r.Context(), dev.UserID, deviceID) // still 404 for an unknown device
		if err != nil {
			return err
		}
		return writeOK(w)
	}
	if err := checkDeviceDisplayName(*req.DisplayName); err != nil {
		return err
	}
	if err := a.n.SetDeviceDisplayName(r.Context(), dev.UserID, deviceID, *req.DisplayName); err != nil {
		return err
	}
	return writeOK(w)
}

// deleteDevice answers DELETE /devices/{deviceId}, which needs the user's
// password (user-interactive auth).
func (a *api) deleteDevice(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Auth *authData `json:"auth"`
	}
	if err := mxhttp.DecodeJSON(r, 0, &req); err != nil {
		return err
	}
	return a.deleteDevicesWithAuth(w, r, req.Auth, []string{r.PathValue("deviceId")})
}

// deleteDevices answers POST /delete_devices.
func (a *api) deleteDevices(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Devices *[]string `json:"devices"`
		Auth    *authData `json:"auth"`
	}
	if err := mxhttp.DecodeJSON(r, 0, &req); err != nil {
		return err
	}
	if req.Devices == nil {
		return mxhttp.MissingParam("missing devices")
	}
	return a.deleteDevicesWithAuth(w, r, req.Auth, *req.Devices)
}

// deleteDevicesWithAuth checks the password stage, then deletes. Devices
// that do not exist are skipped, as a deleted device is what the caller
// wants either way (and a retry after a lost response must not fail).
func (a *api) deleteDevicesWithAuth(w http.ResponseWriter, r *http.Request, auth *authData, ids []string) error {
	dev := mxhttp.DeviceFrom(r)
	ok, err := a.checkPasswordAuth(w, r, dev, auth)
	if !ok {
		return err
	}
	for _, id := range ids {
		if err := a.n.DeleteDevice(r.Context(), dev.UserID, id); err != nil && !errors.Is(err, core.ErrNotFound) {
			return err
		}
	}
	return writeOK(w)
}
