package syncapi

import (
	"context"
	"encoding/json"
	"errors"
	"sort"

	"github.com/edgenode/edgenode/node"
	"github.com/edgenode/edgenode/node/core"
	"github.com/edgenode/edgenode/node/e2ee"
	"github.com/matrix-org/gomatrixserverlib/spec"
)

// toDeviceLimit is how many to-device messages one response carries; the
// rest follow in the next ones.
const toDeviceLimit = 100

// currentToken reads every stream's position. Each section then reports
// what changed up to these positions, so next_batch never skips anything
// committed while the response was being built.
func (a *api) currentToken() StreamToken {
	return StreamToken{
		Room:        a.n.StreamPosition(),
		ToDevice:    a.n.ToDevicePosition(),
		Receipt:     a.n.ReceiptPosition(),
		Typing:      a.n.TypingPosition(),
		AccountData: a.n.AccountDataPosition(),
		DeviceList:  a.n.DeviceListPosition(),
		Presence:    a.n.PresencePosition(),
	}
}

type toDeviceList struct {
	Events []e2ee.ToDeviceEvent `json:"events"`
}

type deviceLists struct {
	Changed []string `json:"changed"`
	Left    []string `json:"left"`
}

// memberChanges collects, while rooms are synced, the users who came to
// share a room with the syncing user and those who may have stopped, for
// device_lists.
type memberChanges struct {
	joined, left map[string]bool
}

func (m *memberChanges) note(ev *core.Event, self string) {
	if ev.PDU.Type() != spec.MRoomMember || ev.PDU.StateKey() == nil || *ev.PDU.StateKey() == self {
		return
	}
	target := *ev.PDU.StateKey()
	switch ms, _ := ev.PDU.Membership(); ms {
	case spec.Join:
		m.joined[target] = true
	case spec.Leave, spec.Ban:
		m.left[target] = true
	}
}

// ignoredUsers reads the user's m.ignored_user_list: their events are left
// out of timelines and their invites are not shown.
func (a *api) ignoredUsers(ctx context.Context, userID string) (map[string]bool, error) {
	raw, err := a.n.AccountData(ctx, userID, "", "m.ignored_user_list")
	if errors.Is(err, core.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var c struct {
		IgnoredUsers map[string]json.RawMessage `json:"ignored_users"`
	}
	if json.Unmarshal(raw, &c) != nil || len(c.IgnoredUsers) == 0 {
		return nil, nil
	}
	out := make(map[string]bool, len(c.IgnoredUsers))
	for u := range c.IgnoredUsers {
		out[u] = true
	}
	return out, nil
}

// withoutIgnored wraps keep (nil keeps all) to leave out the events of the
// ignored senders. Their state events are kept (as Synapse does): leaving
// them out would hide state changes.
func withoutIgnored(ignored map[string]bool, keep func(*core.Event) bool) func(*core.Event) bool {
	if len(ignored) == 0 {
		return keep
	}
	return func(ev *core.Event) bool {
		if ignored[string(ev.PDU.SenderID())] && ev.PDU.StateKey() == nil {
			return false
		}
		return keep == nil || keep(ev)
	}
}

// joinedEntry returns the response's entry for a joined room, adding an
// empty one when the room had no timeline or state news.
func (res *syncResponse) joinedEntry(roomID string, to StreamToken, stateAfterKey string) *joinedRoom {
	if jr, ok := res.Rooms.Join[roomID]; ok {
		return jr
	}
	jr := &joinedRoom{
		roomSection: roomSection{Timeline: timeline{Events: []any{}, PrevBatch: to.String()}},
		Ephemeral:   eventList{Events: []any{}},
		AccountData: eventList{Events: []any{}},
	}
	// The state section the client asked for is sent even when empty.
	jr.State, jr.StateAfter, jr.StateAfterU = stateSection(stateAfterKey, &eventList{Events: []any{}})
	res.Rooms.Join[roomID] = jr
	return jr
}

// syncUserData fills the sections that are not room timelines: account
// data, ephemeral events of joined rooms, presence, to-device messages,
// device lists and key counts. It may lower to.ToDevice to what it
// delivered, so undelivered messages come next time.
func (a *api) syncUserData(ctx context.Context, req *syncRequest, to *StreamToken, res *syncResponse) error {
	user := req.dev.UserID
	since := req.since
	if req.fullState {
		// A full-state sync resends account data, receipts and typing;
		// to-device and device lists stay incremental (they are queues).
		since.AccountData, since.Receipt, since.Typing, since.Presence = 0, 0, 0, 0
	}
	fresh := !req.hasSince || req.fullState
	if err := a.syncAccountData(ctx, req, since.AccountData, *to, res); err != nil {
		return err
	}
	if err := a.syncEphemeral(ctx, req, since, *to, fresh, res); err != nil {
		return err
	}
	presence, err := a.n.PresenceSince(ctx, user, since.Presence, to.Presence)
	if err != nil {
		return err
	}
	var pres []any
	for _, p := range presence {
		if req.filter.Presence.Match("m.presence", p.UserID) {
			pres = append(pres, p)
		}
	}
	if len(pres) > 0 {
		res.Presence = &eventList{Events: pres}
	}
	if err := a.syncToDevice(ctx, req, to, res); err != nil {
		return err
	}
	if req.hasSince {
		if err := a.syncDeviceLists(ctx, req, *to, res); err != nil {
			return err
		}
	}
	if res.OTKCounts, err = a.n.OneTimeKeyCounts(ctx, user, req.dev.DeviceID); err != nil {
		return err
	}
	fallback, err := a.n.UnusedFallbackKeyTypes(ctx, user, req.dev.DeviceID)
	if err != nil {
		return err
	}
	if fallback == nil {
		fallback = []string{}
	}
	res.FallbackKeyTypes, res.FallbackKeyTypesUnstable = fallback, fallback
	return nil
}

func (a *api) syncAccountData(ctx context.Context, req *syncRequest, from uint64, to StreamToken, res *syncResponse) error {
	changes, err := a.n.AccountDataSince(ctx, req.dev.UserID, from, to.AccountData)
	if err != nil {
		return err
	}
	joined := req.joinedSet()
	var global []any
	for _, c := range changes {
		ev := accountDataEvent{Type: c.Type, Content: rawJSON(c.Content)}
		if c.RoomID == "" {
			if req.filter.AccountData.Match(c.Type, req.dev.UserID) {
				global = append(global, ev)
			}
			continue
		}
		if !joined[c.RoomID] || !req.filter.Room.MatchRoom(c.RoomID) ||
			!req.filter.Room.AccountData.MatchFields(c.RoomID, c.Type, req.dev.UserID, nil) {
			continue
		}
		jr := res.joinedEntry(c.RoomID, to, req.stateAfterKey)
		jr.AccountData.Events = append(jr.AccountData.Events, ev)
	}
	if !req.hasSince && !hasType(changes, node.AccountDataPushRules) && req.filter.AccountData.Match(node.AccountDataPushRules, req.dev.UserID) {
		// The spec has an initial sync carry the push rules, which exist
		// (the defaults) before the user changes any.
		global = append(global, accountDataEvent{Type: node.AccountDataPushRules, Content: rawJSON(node.DefaultPushRulesContent(req.dev.UserID))})
	}
	if len(global) > 0 {
		res.AccountData = &eventList{Events: global}
	}
	return nil
}

// hasType reports whether changes hold global account data of evType.
func hasType(changes []node.AccountDataChange, evType string) bool {
	for _, c := range changes {
		if c.RoomID == "" && c.Type == evType {
			return true
		}
	}
	return false
}

type accountDataEvent struct {
	Type    string  `json:"type"`
	Content rawJSON `json:"content"`
}

// syncEphemeral adds typing and receipts to joined rooms.
func (a *api) syncEphemeral(ctx context.Context, req *syncRequest, since, to StreamToken, fresh bool, res *syncResponse) error {
	f := &req.filter.Room.Ephemeral
	for _, roomID := range req.joinedRooms {
		typists, pos := a.n.Typing(roomID)
		// A change after to.Typing is left to the next response, which
		// would otherwise send it again (this one's token is before it).
		if pos > to.Typing || fresh && len(typists) == 0 || !fresh && pos <= since.Typing {
			continue
		}
		if !f.MatchFields(roomID, "m.typing", "", nil) {
			continue
		}
		if typists == nil {
			typists = []string{}
		}
		jr := res.joinedEntry(roomID, to, req.stateAfterKey)
		jr.Ephemeral.Events = append(jr.Ephemeral.Events, map[string]any{
			"type": "m.typing", "content": map[string]any{"user_ids": typists},
		})
	}
	if len(req.joinedRooms) == 0 {
		return nil
	}
	receipts, err := a.n.ReceiptsSince(ctx, req.dev.UserID, req.joinedRooms, since.Receipt, to.Receipt)
	if err != nil {
		return err
	}
	for roomID, content := range receipts {
		if !f.MatchFields(roomID, "m.receipt", "", nil) {
			continue
		}
		jr := res.joinedEntry(roomID, to, req.stateAfterKey)
		jr.Ephemeral.Events = append(jr.Ephemeral.Events, accountDataEvent{Type: "m.receipt", Content: rawJSON(content)})
	}
	return nil
}

// syncToDevice delivers the device's queued messages. The messages the
// client's since token covers were seen, so they are deleted first; the
// token handed out covers only what this response delivers.
func (a *api) syncToDevice(ctx context.Context, req *syncRequest, to *StreamToken, res *syncResponse) error {
	user, device := req.dev.UserID, req.dev.DeviceID
	if req.hasSince && req.since.ToDevice > 0 {
		if err := a.n.AckToDevice(ctx, user, device, req.since.ToDevice); err != nil {
			return err
		}
	}
	evs, upTo, err := a.n.ToDeviceSince(ctx, user, device, req.since.ToDevice, toDeviceLimit)
	if err != nil {
		return err
	}
	if len(evs) == 0 {
		// Nothing after since exists below to.ToDevice (read before this
		// query), so the token may move on to it.
		to.ToDevice = max(to.ToDevice, req.since.ToDevice)
		return nil
	}
	to.ToDevice = upTo
	res.ToDevice = &toDeviceList{Events: evs}
	return nil
}

// syncDeviceLists reports users whose keys changed or who came to share a
// room with the user (changed), and users who no longer share any (left).
func (a *api) syncDeviceLists(ctx context.Context, req *syncRequest, to StreamToken, res *syncResponse) error {
	dl, err := a.deviceListDelta(ctx, req.dev.UserID, req.since.DeviceList, to.DeviceList, req.members)
	if err != nil {
		return err
	}
	if len(dl.Changed) > 0 || len(dl.Left) > 0 {
		res.DeviceLists = dl
	}
	return nil
}

// deviceListDelta is what /sync's device_lists and /keys/changes report:
// changed holds the users whose device keys changed in (from, to] and those
// mc saw join; left holds those mc saw leave who share no room with user
// any more (and did not also come back). Both lists are sorted, never nil.
func (a *api) deviceListDelta(ctx context.Context, user string, from, to uint64, mc memberChanges) (*deviceLists, error) {
	changed, err := a.n.DeviceListChangesSince(ctx, user, from, to)
	if err != nil {
		return nil, err
	}
	set := map[string]bool{}
	for _, u := range changed {
		set[u] = true
	}
	for u := range mc.joined {
		set[u] = true
	}
	dl := &deviceLists{Changed: make([]string, 0, len(set)), Left: []string{}}
	for u := range set {
		dl.Changed = append(dl.Changed, u)
	}
	for u := range mc.left {
		if set[u] {
			continue
		}
		shares, err := a.n.SharesRoom(ctx, user, u)
		if err != nil {
			return nil, err
		}
		if !shares {
			dl.Left = append(dl.Left, u)
		}
	}
	sort.Strings(dl.Changed)
	sort.Strings(dl.Left)
	return dl, nil
}

// joinedSet is the set of the rooms the user is joined to in this response.
func (req *syncRequest) joinedSet() map[string]bool {
	m := make(map[string]bool, len(req.joinedRooms))
	for _, r := range req.joinedRooms {
		m[r] = true
	}
	return m
}
