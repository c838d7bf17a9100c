package core

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/edgenode/edgenode/kv"
	"github.com/matrix-org/gomatrixserverlib/spec"
)

// Profile is a user's public profile.
type Profile struct {
	DisplayName string `json:"displayname,omitempty"`
	AvatarURL   string `json:"avatar_url,omitempty"`
}

// Profile returns a local user's profile, or ErrNotFound.
func (n *Node) Profile(ctx context.Context, userID string) (Profile, error) {
	var p Profile
	err := n.DB.View(func(tx *kv.Txn) error { return tx.GetJSON(ProfileKey(userID), &p) })
	if errors.Is(err, kv.ErrNotFound) {
		return p, fmt.Errorf("profile of %s: %w", userID, ErrNotFound)
	}
	return p, err
}

// SetProfile changes a local user's display name and/or avatar (nil leaves a
// field as it is) and sends an updated member event to every room the user
// is joined to, as the spec asks.
func (n *Node) SetProfile(ctx context.Context, userID, deviceID string, displayName, avatarURL *string) error {
	var p Profile
	err := n.DB.Update(func(tx *kv.Txn) error {
		if err := tx.GetJSON(ProfileKey(userID), &p); err != nil {
			if errors.Is(err, kv.ErrNotFound) {
				return fmt.Errorf("profile of %s: %w", userID, ErrNotFound)
			}
			return err
		}
		if displayName != nil {
			p.DisplayName = *displayName
		}
		if avatarURL != nil {
			p.AvatarURL = *avatarURL
		}
		return tx.SetJSON(ProfileKey(userID), p)
	})
	if err != nil {
		return err
	}
	rooms, err := n.JoinedRooms(ctx, userID)
	if err != nil {
		return err
	}
	for _, roomID := range rooms {
		ev, err := n.CurrentStateEvent(ctx, roomID, spec.MRoomMember, userID)
		if err != nil {
			return err
		}
		var content map[string]any
		if err := json.Unmarshal(ev.PDU.Content(), &content); err != nil {
			return err
		}
		SetOrDelete(content, "displayname", p.DisplayName)
		SetOrDelete(content, "avatar_url", p.AvatarURL)
		raw, _ := json.Marshal(content)
		if _, err := n.SendEvent(ctx, SendRequest{
			Sender: userID, DeviceID: deviceID, RoomID: roomID, Type: spec.MRoomMember, StateKey: &userID, Content: raw,
		}); err != nil {
			n.log.Warn("profile: member event not sent", "room", roomID, "err", err)
		}
	}
	return nil
}

func SetOrDelete(m map[string]any, k, v string) {
	if v == "" {
		delete(m, k)
	} else {
		m[k] = v
	}
}
