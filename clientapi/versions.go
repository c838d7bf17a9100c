package clientapi

import (
	"net/http"

	"github.com/edgenode/edgenode/internal/mxhttp"
	"github.com/edgenode/edgenode/node/core"
)

// versionsResponse is the body of GET /_matrix/client/versions.
type versionsResponse struct {
	Versions         []string        `json:"versions"`
	UnstableFeatures map[string]bool `json:"unstable_features"`
}

// versions answers GET /_matrix/client/versions. It needs no token: clients
// call it before they log in.
func (a *api) versions(w http.ResponseWriter, r *http.Request) error {
	mxhttp.WriteJSON(w, http.StatusOK, versionsResponse{
		Versions: []string{
			"v1.1", "v1.2", "v1.3", "v1.4", "v1.5", "v1.6",
			"v1.7", "v1.8", "v1.9", "v1.10", "v1.11", "v1.12",
		},
		UnstableFeatures: map[string]bool{
			"org.matrix.msc4354": true, // sticky events
			// simplified sliding sync (syncapi)
			"org.matrix.simplified_msc3575": true,
		},
	})
	return nil
}

// capabilities answers GET /capabilities.
func (a *api) capabilities(w http.ResponseWriter, r *http.Request) error {
	available := map[string]string{}
	for _, v := range core.SupportedRoomVersions() {
		available[string(v)] = "stable"
	}
	enabled := func(b bool) map[string]bool { return map[string]bool{"enabled": b} }
	mxhttp.WriteJSON(w, http.StatusOK, map[string]any{
		"capabilities": map[string]any{
			"m.change_password": enabled(false),
			"m.room_versions": map[string]any{
				"default":   string(a.n.Config().DefaultRoomVersion),
				"available": available,
			},
			"m.set_displayname": enabled(true),
			"m.set_avatar_url":  enabled(true),
			"m.3pid_changes":    enabled(false),
			"m.get_login_token": enabled(false),
			"m.profile_fields": map[string]any{
				"enabled": true,
				"allowed": []string{profileDisplayName, profileAvatarURL},
			},
		},
	})
	return nil
}
