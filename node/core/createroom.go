package core

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/edgenode/edgenode/kv"
	"github.com/matrix-org/gomatrixserverlib"
	"github.com/matrix-org/gomatrixserverlib/spec"
)

// InitialStateEvent is one entry of createRoom's initial_state.
type InitialStateEvent struct {
	Type     string          `json:"type"`
	StateKey string          `json:"state_key"`
	Content  json.RawMessage `json:"content"`
}

// CreateRoomRequest is a parsed /createRoom body.
type CreateRoomRequest struct {
	Creator                   string
	DeviceID                  string
	Preset                    string
	Visibility                string
	Name                      *string
	Topic                     *string
	Invite                    []string
	RoomAliasName             string
	IsDirect                  bool
	InitialState              []InitialStateEvent
	PowerLevelContentOverride json.RawMessage
	CreationContent           json.RawMessage
	RoomVersion               string
}

// Presets the spec defines.
const (
	PresetPrivateChat        = "private_chat"
	PresetTrustedPrivateChat = "trusted_private_chat"
	PresetPublicChat         = "public_chat"
)

// CreateRoom creates a room with its initial events, as the spec orders them,
// committed together: a crash leaves either the whole room or none of it.
func (n *Node) CreateRoom(ctx context.Context, req CreateRoomRequest) (string, error) {
	version := n.cfg.DefaultRoomVersion
	if req.RoomVersion != "" {
		version = gomatrixserverlib.RoomVersion(req.RoomVersion)
		if !supportedRoomVersions[version] {
			return "", fmt.Errorf("room version %q: %w", req.RoomVersion, ErrUnsupportedRoomVersion)
		}
	}
	if req.Preset == "" {
		req.Preset = PresetPrivateChat
		if req.Visibility == "public" {
			req.Preset = PresetPublicChat
		}
	}
	if req.Preset != PresetPrivateChat && req.Preset != PresetTrustedPrivateChat && req.Preset != PresetPublicChat {
		return "", fmt.Errorf("%w: unknown preset %q", ErrBadInput, req.Preset)
	}
	for _, u := range req.Invite {
		if _, err := spec.NewUserID(u, true); err != nil {
			return "", fmt.Errorf("%w: invitee %q is not a user ID", ErrInvalidParam, u)
		}
	}
	var alias string
	if req.RoomAliasName != "" {
		alias = n.AliasName(req.RoomAliasName)
		if err := n.checkAlias(alias); err != nil || strings.ContainsAny(req.RoomAliasName, ":# ") {
			return "", fmt.Errorf("%w: room_alias_name %q", ErrInvalidParam, req.RoomAliasName)
		}
		if _, err := n.ResolveAlias(ctx, alias); err == nil {
			return "", fmt.Errorf("%s: %w", alias, ErrRoomInUse)
		}
	}
	events, err := n.initialEvents(ctx, req, version, alias)
	if err != nil {
		return "", err
	}
	roomID := "!" + RandomString(18) + ":" + n.serverName
	_, err = n.WithRoom(ctx, roomID, func(b *Batch) error {
		for i, e := range events {
			ev, err := b.Build(e, version)
			if err != nil {
				return fmt.Errorf("initial event %d (%s): %w", i, e.Type, err)
			}
			if err := b.Input(ev, InputOpts{}); err != nil {
				return fmt.Errorf("initial event %d (%s): %w", i, e.Type, err)
			}
		}
		if alias != "" {
			b.Extra = append(b.Extra, func(tx *kv.Txn) error { return setAlias(tx, req.Creator, alias, roomID) })
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	return roomID, nil
}

// initialEvents lists a new room's events in the order they are sent: the
// preset's, then those the request asks for.
func (n *Node) initialEvents(ctx context.Context, req CreateRoomRequest, version gomatrixserverlib.RoomVersion, alias string) ([]gomatrixserverlib.ProtoEvent, error) {
	s := &initialState{creator: req.Creator}
	if err := n.addPresetEvents(ctx, s, req, version, alias); err != nil {
		return nil, err
	}
	if err := n.addRequestedEvents(ctx, s, req); err != nil {
		return nil, err
	}
	return s.out, nil
}

// initialState collects a new room's initial events, in order, all sent by
// the room's creator.
type initialState struct {
	creator string
	out     []gomatrixserverlib.ProtoEvent
}

// add appends a state event; content is a json.RawMessage (which must be a
// JSON object) or a value to marshal.
func (s *initialState) add(evType, stateKey string, content any) error {
	raw, ok := content.(json.RawMessage)
	if !ok {
		var err error
		if raw, err = json.Marshal(content); err != nil {
			return err
		}
	}
	if !json.Valid(raw) || len(raw) == 0 || raw[0] != '{' {
		return fmt.Errorf("%w: content of %s must be an object", ErrBadInput, evType)
	}
	sk := stateKey
	s.out = append(s.out, gomatrixserverlib.ProtoEvent{
		SenderID: s.creator, Type: evType, StateKey: &sk, Content: spec.RawJSON(raw),
	})
	return nil
}

// createContent is the content of the room's create event: the request's
// creation_content with the room version set, and creator set for room
// version 10 and removed otherwise.
func createContent(req CreateRoomRequest, version gomatrixserverlib.RoomVersion) (map[string]any, error) {
	create := map[string]any{}
	if err := checkCreationContent(req.CreationContent); err != nil {
		return nil, err
	}
	if len(req.CreationContent) > 0 {
		if err := json.Unmarshal(req.CreationContent, &create); err != nil {
			return nil, fmt.Errorf("%w: creation_content: %v", ErrBadInput, err)
		}
		if create == nil { // JSON null unmarshals to a nil map
			create = map[string]any{}
		}
	}
	create["room_version"] = string(version)
	if version == gomatrixserverlib.RoomVersionV10 {
		create["creator"] = req.Creator
	} else {
		delete(create, "creator")
	}
	return create, nil
}

// addPresetEvents adds the events every new room starts with: create, the
// creator's join, power levels, the canonical alias when there is one, and
// the join rules, history visibility and guest access of the preset.
func (n *Node) addPresetEvents(ctx context.Context, s *initialState, req CreateRoomRequest, version gomatrixserverlib.RoomVersion, alias string) error {
	create, err := createContent(req, version)
	if err != nil {
		return err
	}
	member := map[string]any{"membership": spec.Join}
	if p, err := n.Profile(ctx, req.Creator); err == nil {
		SetOrDelete(member, "displayname", p.DisplayName)
		SetOrDelete(member, "avatar_url", p.AvatarURL)
	}
	pl, err := powerLevelContent(req)
	if err != nil {
		return err
	}
	joinRule, guest := "invite", "can_join"
	if req.Preset == PresetPublicChat {
		joinRule, guest = "public", "forbidden"
	}
	steps := []struct {
		t, k string
		c    any
	}{
		{spec.MRoomCreate, "", create},
		{spec.MRoomMember, req.Creator, member},
		{spec.MRoomPowerLevels, "", pl},
	}
	if alias != "" {
		steps = append(steps, struct {
			t, k string
			c    any
		}{"m.room.canonical_alias", "", map[string]any{"alias": alias}})
	}
	steps = append(steps, []struct {
		t, k string
		c    any
	}{
		{spec.MRoomJoinRules, "", map[string]any{"join_rule": joinRule}},
		{spec.MRoomHistoryVisibility, "", map[string]any{"history_visibility": "shared"}},
		{"m.room.guest_access", "", map[string]any{"guest_access": guest}},
	}...)
	for _, st := range steps {
		if err := s.add(st.t, st.k, st.c); err != nil {
			return err
		}
	}
	return nil
}

// addRequestedEvents adds what the request asks for on top of the preset:
// its initial_state (never a create or member event), name, topic and the
// invites.
func (n *Node) addRequestedEvents(ctx context.Context, s *initialState, req CreateRoomRequest) error {
	for _, is := range req.InitialState {
		if is.Type == spec.MRoomCreate || is.Type == spec.MRoomMember {
			return fmt.Errorf("%w: initial_state may not hold %s", ErrBadInput, is.Type)
		}
		if err := s.add(is.Type, is.StateKey, is.Content); err != nil {
			return err
		}
	}
	if req.Name != nil {
		if err := s.add(spec.MRoomName, "", map[string]any{"name": *req.Name}); err != nil {
			return err
		}
	}
	if req.Topic != nil {
		if err := s.add(spec.MRoomTopic, "", map[string]any{"topic": *req.Topic}); err != nil {
			return err
		}
	}
	for _, u := range req.Invite {
		c := map[string]any{"membership": spec.Invite}
		if req.IsDirect {
			c["is_direct"] = true
		}
		if p, err := n.Profile(ctx, u); err == nil {
			SetOrDelete(c, "displayname", p.DisplayName)
			SetOrDelete(c, "avatar_url", p.AvatarURL)
		}
		if err := s.add(spec.MRoomMember, u, c); err != nil {
			return err
		}
	}
	return nil
}

// powerLevelContent is the spec's default power levels for the preset, with
// the request's override merged over it.
func powerLevelContent(req CreateRoomRequest) (map[string]any, error) {
	users := map[string]any{req.Creator: 100}
	if req.Preset == PresetTrustedPrivateChat {
		for _, u := range req.Invite {
			users[u] = 100
		}
	}
	invite := 50
	if req.Preset != PresetPublicChat {
		invite = 0
	}
	pl := map[string]any{
		"users":          users,
		"users_default":  0,
		"events_default": 0,
		"state_default":  50,
		"ban":            50,
		"kick":           50,
		"redact":         50,
		"invite":         invite,
		"notifications":  map[string]any{"room": 50},
		"events": map[string]any{
			"m.room.name": 50, "m.room.power_levels": 100, "m.room.history_visibility": 100,
			"m.room.canonical_alias": 50, "m.room.avatar": 50, "m.room.tombstone": 100,
			"m.room.server_acl": 100, "m.room.encryption": 100,
		},
	}
	if len(req.PowerLevelContentOverride) > 0 {
		var override map[string]any
		if err := json.Unmarshal(req.PowerLevelContentOverride, &override); err != nil {
			return nil, fmt.Errorf("%w: power_level_content_override: %v", ErrBadInput, err)
		}
		for k, v := range override {
			pl[k] = v
		}
	}
	return pl, nil
}
