package clientapi

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/edgenode/edgenode/internal/mxhttp"
	"github.com/edgenode/edgenode/node/core"
)

// validMembership reports whether m is a value the membership filters
// accept ("" is no filter).
func validMembership(m string) bool {
	switch m {
	case "", memberJoin, memberInvite, memberLeave, memberBan, "knock":
		return true
	}
	return false
}

// members answers GET /rooms/{roomId}/members. The "at" parameter is not
// supported (its tokens belong to syncapi); the state the user may read is
// used: current while joined, at leaving after.
func (a *api) members(w http.ResponseWriter, r *http.Request) error {
	dev := mxhttp.DeviceFrom(r)
	q := r.URL.Query()
	want, notWant := q.Get("membership"), q.Get("not_membership")
	if !validMembership(want) || !validMembership(notWant) {
		return mxhttp.InvalidParam("unknown membership filter")
	}
	evs, err := a.n.Members(r.Context(), dev.UserID, r.PathValue("roomId"))
	if err != nil {
		return err
	}
	keep := evs[:0]
	for _, ev := range evs {
		m, _ := ev.PDU.Membership()
		// Both filters together are an "or", as the spec says.
		var ok bool
		switch {
		case want != "" && notWant != "":
			ok = m == want || m != notWant
		case want != "":
			ok = m == want
		case notWant != "":
			ok = m != notWant
		default:
			ok = true
		}
		if ok {
			keep = append(keep, ev)
		}
	}
	mxhttp.WriteJSON(w, http.StatusOK, map[string]any{"chunk": clientEvents(keep, dev)})
	return nil
}

// roomMember is one entry of joined_members.
type roomMember struct {
	DisplayName string `json:"display_name,omitempty"`
	AvatarURL   string `json:"avatar_url,omitempty"`
}

// joinedMembers answers GET /rooms/{roomId}/joined_members. Unlike
// /members, the caller must be joined now.
func (a *api) joinedMembers(w http.ResponseWriter, r *http.Request) error {
	dev := mxhttp.DeviceFrom(r)
	roomID := r.PathValue("roomId")
	if err := a.requireJoined(r, dev.UserID, roomID); err != nil {
		return err
	}
	evs, err := a.n.Members(r.Context(), dev.UserID, roomID)
	if err != nil {
		return err
	}
	joined := map[string]roomMember{}
	for _, ev := range evs {
		if m, _ := ev.PDU.Membership(); m != memberJoin || ev.PDU.StateKey() == nil {
			continue
		}
		var c struct {
			DisplayName any `json:"displayname"`
			AvatarURL   any `json:"avatar_url"`
		}
		_ = json.Unmarshal(ev.PDU.Content(), &c) // membership parsed, so content is an object
		// Profile fields in events are whatever the sender put there: take
		// only strings.
		dn, _ := c.DisplayName.(string)
		av, _ := c.AvatarURL.(string)
		joined[*ev.PDU.StateKey()] = roomMember{DisplayName: dn, AvatarURL: av}
	}
	mxhttp.WriteJSON(w, http.StatusOK, map[string]any{"joined": joined})
	return nil
}

// requireJoined is ErrForbidden unless userID is joined to roomID now.
func (a *api) requireJoined(r *http.Request, userID, roomID string) error {
	mi, err := a.n.Membership(r.Context(), roomID, userID)
	if err != nil {
		return err
	}
	if mi.Membership != memberJoin {
		return fmt.Errorf("%w: you are not joined to %s", core.ErrForbidden, roomID)
	}
	return nil
}
