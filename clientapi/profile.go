package clientapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"

	"github.com/edgenode/edgenode/internal/mxhttp"
	"github.com/edgenode/edgenode/node/core"
)

// Profile fields the node stores. Other keys are valid in the spec's
// grammar but have nowhere to live yet: the m.profile_fields capability
// lists only these two as settable.
const (
	profileDisplayName = "displayname"
	profileAvatarURL   = "avatar_url"
)

// Limits on profile values. A profile change is copied into a member event
// in every joined room, so an unbounded value would make those events fail
// the 64 KiB event limit one room at a time; refuse it up front instead.
const (
	maxDisplayNameBytes = 256
	maxAvatarURLBytes   = 1000
)

// profileKeyRE is the spec's grammar for profile field names.
var profileKeyRE = regexp.MustCompile(`^(avatar_url|displayname|m\.tz|[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+)$`)

// getProfile answers GET /profile/{userId}. Unset fields are left out.
// Another server's user's profile is asked of that server.
func (a *api) getProfile(w http.ResponseWriter, r *http.Request) error {
	p, err := a.n.LookupProfile(r.Context(), r.PathValue("userId"), "")
	if err != nil {
		return err
	}
	mxhttp.WriteJSON(w, http.StatusOK, p)
	return nil
}

// getProfileField answers GET /profile/{userId}/{keyName}; a field that is
// not set (or not stored by this node) is 404. Another server's user's
// field is asked of that server.
func (a *api) getProfileField(w http.ResponseWriter, r *http.Request) error {
	userID, key := r.PathValue("userId"), r.PathValue("keyName")
	if !profileKeyRE.MatchString(key) {
		return mxhttp.InvalidParam("invalid profile key %q", key)
	}
	field := "" // keys this node does not store are asked for in full
	if key == profileDisplayName || key == profileAvatarURL {
		field = key
	}
	p, err := a.n.LookupProfile(r.Context(), userID, field)
	if err != nil {
		return err
	}
	var v string
	switch key {
	case profileDisplayName:
		v = p.DisplayName
	case profileAvatarURL:
		v = p.AvatarURL
	}
	if v == "" {
		return fmt.Errorf("profile field %s of %s: %w", key, userID, core.ErrNotFound)
	}
	mxhttp.WriteJSON(w, http.StatusOK, map[string]string{key: v})
	return nil
}

// putProfileField answers PUT /profile/{userId}/{keyName}: a user may change
// only their own profile. The node sends a new member event into every room
// the user is joined to.
func (a *api) putProfileField(w http.ResponseWriter, r *http.Request) error {
	key, err := a.ownProfileKey(r)
	if err != nil {
		return err
	}
	if key != profileDisplayName && key != profileAvatarURL {
		return mxhttp.Forbidden("profile field %q cannot be set on this server", key)
	}
	var body map[string]json.RawMessage
	if err := mxhttp.DecodeJSON(r, 0, &body); err != nil {
		return err
	}
	raw, ok := body[key]
	if !ok {
		return mxhttp.MissingParam("missing %s", key)
	}
	var v string
	if isNull(raw) || json.Unmarshal(raw, &v) != nil {
		return mxhttp.BadJSON("%s must be a string", key)
	}
	if err := checkProfileValue(key, v); err != nil {
		return err
	}
	return a.setProfileField(w, r, key, v)
}

// deleteProfileField answers DELETE /profile/{userId}/{keyName}. Deleting a
// field that is not set, or that this node does not store, succeeds.
func (a *api) deleteProfileField(w http.ResponseWriter, r *http.Request) error {
	key, err := a.ownProfileKey(r)
	if err != nil {
		return err
	}
	return a.setProfileField(w, r, key, "")
}

// ownProfileKey checks that the path names the caller and a valid key.
func (a *api) ownProfileKey(r *http.Request) (string, error) {
	userID, key := r.PathValue("userId"), r.PathValue("keyName")
	if userID != mxhttp.DeviceFrom(r).UserID {
		return "", mxhttp.Forbidden("you may only change your own profile")
	}
	if !profileKeyRE.MatchString(key) {
		return "", mxhttp.InvalidParam("invalid profile key %q", key)
	}
	return key, nil
}

func checkProfileValue(key, v string) error {
	switch key {
	case profileDisplayName:
		if len(v) > maxDisplayNameBytes {
			return mxhttp.InvalidParam("displayname is over %d bytes", maxDisplayNameBytes)
		}
	case profileAvatarURL:
		if len(v) > maxAvatarURLBytes {
			return mxhttp.InvalidParam("avatar_url is over %d bytes", maxAvatarURLBytes)
		}
		if v != "" && !strings.HasPrefix(v, "mxc://") {
			return mxhttp.InvalidParam("avatar_url must be an mxc:// URI")
		}
	}
	return nil
}

// setProfileField stores one field; "" clears it. Keys other than the two
// stored ones only reach here from DELETE, where there is nothing to do.
func (a *api) setProfileField(w http.ResponseWriter, r *http.Request, key, v string) error {
	dev := mxhttp.DeviceFrom(r)
	var dn, av *string
	switch key {
	case profileDisplayName:
		dn = &v
	case profileAvatarURL:
		av = &v
	default:
		return writeOK(w)
	}
	if err := a.n.SetProfile(r.Context(), dev.UserID, dev.DeviceID, dn, av); err != nil {
		return err
	}
	return writeOK(w)
}
