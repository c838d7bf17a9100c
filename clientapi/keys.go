package clientapi

import (
	"encoding/json"
	"net/http"

	"github.com/edgenode/edgenode/internal/mxhttp"
)

// uploadKeys answers POST /keys/upload.
func (a *api) uploadKeys(w http.ResponseWriter, r *http.Request) error {
	dev := mxhttp.DeviceFrom(r)
	var req struct {
		DeviceKeys   json.RawMessage            `json:"device_keys"`
		OneTimeKeys  map[string]json.RawMessage `json:"one_time_keys"`
		FallbackKeys map[string]json.RawMessage `json:"fallback_keys"`
		// Clients written before Matrix 1.2 use MSC2732's unstable name.
		UnstableFallbackKeys map[string]json.RawMessage `json:"org.matrix.msc2732.fallback_keys"`
	}
	if err := mxhttp.DecodeJSON(r, 0, &req); err != nil {
		return err
	}
	if req.FallbackKeys == nil {
		req.FallbackKeys = req.UnstableFallbackKeys
	}
	counts, err := a.n.UploadKeys(r.Context(), dev.UserID, dev.DeviceID, req.DeviceKeys, req.OneTimeKeys, req.FallbackKeys)
	if err != nil {
		return err
	}
	mxhttp.WriteJSON(w, http.StatusOK, map[string]any{"one_time_key_counts": counts})
	return nil
}

// queryKeys answers POST /keys/query. Other servers' users are asked of
// their servers, waiting at most the request's timeout; servers that did
// not answer are listed in failures.
func (a *api) queryKeys(w http.ResponseWriter, r *http.Request) error {
	dev := mxhttp.DeviceFrom(r)
	var req struct {
		DeviceKeys map[string][]string `json:"device_keys"`
		Timeout    int64               `json:"timeout"`
	}
	if err := mxhttp.DecodeJSON(r, 0, &req); err != nil {
		return err
	}
	if req.DeviceKeys == nil {
		return mxhttp.MissingParam("missing device_keys")
	}
	res, err := a.n.QueryAllKeys(r.Context(), dev.UserID, req.DeviceKeys, remoteWait(req.Timeout))
	if err != nil {
		return err
	}
	mxhttp.WriteJSON(w, http.StatusOK, map[string]any{
		"device_keys": res.DeviceKeys, "master_keys": res.MasterKeys, "self_signing_keys": res.SelfSigningKeys,
		"user_signing_keys": res.UserSigningKeys, "failures": remoteFailures(res.Failures),
	})
	return nil
}

// claimKeys answers POST /keys/claim; other servers' users' keys are
// claimed from their servers, as in queryKeys.
func (a *api) claimKeys(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		OneTimeKeys map[string]map[string]string `json:"one_time_keys"`
		Timeout     int64                        `json:"timeout"`
	}
	if err := mxhttp.DecodeJSON(r, 0, &req); err != nil {
		return err
	}
	if req.OneTimeKeys == nil {
		return mxhttp.MissingParam("missing one_time_keys")
	}
	keys, failures, err := a.n.ClaimAllKeys(r.Context(), req.OneTimeKeys, remoteWait(req.Timeout))
	if err != nil {
		return err
	}
	mxhttp.WriteJSON(w, http.StatusOK, map[string]any{"one_time_keys": keys, "failures": remoteFailures(failures)})
	return nil
}

// uploadCrossSigningKeys answers POST /keys/device_signing/upload. As the
// spec allows (and Synapse does), a user's first upload, or a repeat of the
// stored keys, needs no user-interactive auth: a client setting up
// encryption right after registering then does not ask for the password.
// Replacing keys needs the password.
func (a *api) uploadCrossSigningKeys(w http.ResponseWriter, r *http.Request) error {
	dev := mxhttp.DeviceFrom(r)
	var req struct {
		MasterKey      json.RawMessage `json:"master_key"`
		SelfSigningKey json.RawMessage `json:"self_signing_key"`
		UserSigningKey json.RawMessage `json:"user_signing_key"`
		Auth           *authData       `json:"auth"`
	}
	if err := mxhttp.DecodeJSON(r, 0, &req); err != nil {
		return err
	}
	needsAuth, err := a.n.CrossSigningUploadNeedsAuth(r.Context(), dev.UserID, req.MasterKey, req.SelfSigningKey, req.UserSigningKey)
	if err != nil {
		return err
	}
	if needsAuth {
		if ok, err := a.checkPasswordAuth(w, r, dev, req.Auth); !ok {
			return err
		}
	}
	if err := a.n.UploadCrossSigningKeys(r.Context(), dev.UserID, req.MasterKey, req.SelfSigningKey, req.UserSigningKey); err != nil {
		return err
	}
	return writeOK(w)
}

// uploadSignatures answers POST /keys/signatures/upload: signatures the
// node refuses are reported per key in failures, the rest are stored.
func (a *api) uploadSignatures(w http.ResponseWriter, r *http.Request) error {
	dev := mxhttp.DeviceFrom(r)
	var req map[string]map[string]json.RawMessage
	if err := mxhttp.DecodeJSON(r, 0, &req); err != nil {
		return err
	}
	failed, err := a.n.UploadSignatures(r.Context(), dev.UserID, req)
	if err != nil {
		return err
	}
	failures := map[string]map[string]any{}
	for userID, byKey := range failed {
		failures[userID] = map[string]any{}
		for keyID, ferr := range byKey {
			me := mxhttp.ToMatrix(ferr)
			failures[userID][keyID] = map[string]string{"errcode": me.Code, "error": me.Message}
		}
	}
	mxhttp.WriteJSON(w, http.StatusOK, map[string]any{"failures": failures})
	return nil
}
