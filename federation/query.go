package federation

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/edgenode/edgenode/internal/mxhttp"
	"github.com/matrix-org/gomatrixserverlib/spec"
)

// The answering side of the query endpoints: this server's aliases, its
// users' device lists and keys. Only local aliases and users are answered:
// a server speaks for its own names, never relays what it heard of others.

// maxQueryUsers bounds the users one keys query or claim may name; larger
// requests are refused rather than served slowly.
const maxQueryUsers = 1000

// queryDirectory is GET /_matrix/federation/v1/query/directory: the room a
// local alias points to, with the servers to join it through.
func (h *handler) queryDirectory(w http.ResponseWriter, r *http.Request) error {
	alias := r.URL.Query().Get("room_alias")
	if alias == "" {
		return mxhttp.MissingParam("room_alias is required")
	}
	// An alias's server is everything after its first colon.
	if _, server, _ := strings.Cut(alias, ":"); !strings.HasPrefix(alias, "#") || server != h.n.ServerName() {
		return mxhttp.NotFound("%s is not an alias of this server", alias)
	}
	ra, err := h.n.LookupAlias(r.Context(), alias)
	if err != nil {
		return err
	}
	mxhttp.WriteJSON(w, http.StatusOK, ra)
	return nil
}

// userDevices is GET /_matrix/federation/v1/user/devices/{userId}: a local
// user's devices with their keys, and the user's master and self-signing
// keys. A user of another server is 400 (the spec says the user must be
// local); an unknown local user is 404.
func (h *handler) userDevices(w http.ResponseWriter, r *http.Request) error {
	userID := r.PathValue("userId")
	uid, err := spec.NewUserID(userID, true)
	if err != nil {
		return mxhttp.InvalidParam("user ID: %v", err)
	}
	if string(uid.Domain()) != h.n.ServerName() {
		return mxhttp.InvalidParam("%s is not a user of this server", userID)
	}
	ud, err := h.n.UserDevices(r.Context(), userID)
	if err != nil {
		return err
	}
	devices := make([]map[string]any, 0, len(ud.Devices))
	for _, d := range ud.Devices {
		dev := map[string]any{"device_id": d.DeviceID, "keys": d.Keys}
		if d.DisplayName != "" {
			dev["device_display_name"] = d.DisplayName
		}
		devices = append(devices, dev)
	}
	out := map[string]any{"user_id": userID, "stream_id": ud.StreamID, "devices": devices}
	if ud.MasterKey != nil {
		out["master_key"] = ud.MasterKey
	}
	if ud.SelfSigningKey != nil {
		out["self_signing_key"] = ud.SelfSigningKey
	}
	mxhttp.WriteJSON(w, http.StatusOK, out)
	return nil
}

// decodeQueryBody decodes the authenticated JSON body of a query into v.
func decodeQueryBody(r *http.Request, v any) error {
	content := fedRequest(r).content
	if len(content) == 0 {
		return mxhttp.NotJSON("missing body")
	}
	if err := json.Unmarshal(content, v); err != nil {
		return mxhttp.BadJSON("body: %v", err)
	}
	return nil
}

// localOnly keeps the entries of users of this server: the spec has a
// server answer for its own users only, and leave the rest out.
func localOnly[V any](h *handler, byUser map[string]V) map[string]V {
	out := map[string]V{}
	for u, v := range byUser {
		if uid, err := spec.NewUserID(u, true); err == nil && string(uid.Domain()) == h.n.ServerName() {
			out[u] = v
		}
	}
	return out
}

// queryKeys is POST /_matrix/federation/v1/user/keys/query: the device keys
// and master and self-signing keys of local users (never a user-signing
// key: that is its owner's alone). Users of other servers are left out.
func (h *handler) queryKeys(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		DeviceKeys map[string][]string `json:"device_keys"`
	}
	if err := decodeQueryBody(r, &req); err != nil {
		return err
	}
	if req.DeviceKeys == nil {
		return mxhttp.MissingParam("device_keys is required")
	}
	if len(req.DeviceKeys) > maxQueryUsers {
		return mxhttp.BadJSON("more than %d users in one query", maxQueryUsers)
	}
	// No requesting user: only the signatures keys' owners made are shown.
	devices, master, selfSigning, _, err := h.n.QueryKeys(r.Context(), "", localOnly(h, req.DeviceKeys))
	if err != nil {
		return err
	}
	mxhttp.WriteJSON(w, http.StatusOK, map[string]any{
		"device_keys": devices, "master_keys": master, "self_signing_keys": selfSigning,
	})
	return nil
}

// claimKeys is POST /_matrix/federation/v1/user/keys/claim: one one-time
// key (or the fallback key) per asked device of local users. Users of other
// servers are left out.
func (h *handler) claimKeys(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		OneTimeKeys map[string]map[string]string `json:"one_time_keys"`
	}
	if err := decodeQueryBody(r, &req); err != nil {
		return err
	}
	if req.OneTimeKeys == nil {
		return mxhttp.MissingParam("one_time_keys is required")
	}
	if len(req.OneTimeKeys) > maxQueryUsers {
		return mxhttp.BadJSON("more than %d users in one claim", maxQueryUsers)
	}
	keys, err := h.n.ClaimKeys(r.Context(), localOnly(h, req.OneTimeKeys))
	if err != nil {
		return err
	}
	mxhttp.WriteJSON(w, http.StatusOK, map[string]any{"one_time_keys": keys})
	return nil
}
