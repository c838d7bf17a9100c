package syncapi

import (
	"context"
	"slices"
	"strconv"

	"github.com/edgenode/edgenode/internal/mxhttp"
	"github.com/edgenode/edgenode/node"
	"github.com/edgenode/edgenode/node/core"
	"github.com/edgenode/edgenode/node/e2ee"
	"github.com/matrix-org/gomatrixserverlib/spec"
)

// ssExtensionsRequest are the extensions a request enables. An extension
// is on when its object is present and enabled is not false.
type ssExtensionsRequest struct {
	ToDevice    *ssStreamExt `json:"to_device"`
	E2EE        *ssExt       `json:"e2ee"`
	AccountData *ssExt       `json:"account_data"`
	Receipts    *ssExt       `json:"receipts"`
	Typing      *ssExt       `json:"typing"`
	Sticky      *ssStreamExt `json:"org.matrix.msc4354.sticky_events"`
}

// ssExt is an extension's request without options of its own.
type ssExt struct {
	Enabled *bool `json:"enabled"`
}

func (e *ssExt) on() bool { return e != nil && (e.Enabled == nil || *e.Enabled) }

// ssStreamExt is an extension that pages through a stream of its own with
// since and next_batch (to-device messages, MSC3885; sticky events,
// MSC4480), oldest first.
type ssStreamExt struct {
	ssExt
	Since string `json:"since"`
	Limit int    `json:"limit"`
}

func (e *ssStreamExt) on() bool { return e != nil && e.ssExt.on() }

// since parses the extension's since token: a decimal position.
func (e *ssStreamExt) since() (uint64, error) {
	if e.Since == "" {
		return 0, nil
	}
	v, err := strconv.ParseUint(e.Since, 10, 64)
	if err != nil {
		return 0, mxhttp.InvalidParam("extension since token %q is not valid", e.Since)
	}
	return v, nil
}

func (e *ssStreamExt) limit(def int) int {
	if e.Limit <= 0 {
		return def
	}
	return min(e.Limit, def)
}

// ssExtensions is the extensions part of a response; nil parts are left
// out.
type ssExtensions struct {
	ToDevice    *ssToDevice    `json:"to_device,omitempty"`
	E2EE        *ssE2EE        `json:"e2ee,omitempty"`
	AccountData *ssAccountData `json:"account_data,omitempty"`
	Receipts    *ssEphemeral   `json:"receipts,omitempty"`
	Typing      *ssEphemeral   `json:"typing,omitempty"`
	Sticky      *ssSticky      `json:"org.matrix.msc4354.sticky_events,omitempty"`
}

type ssToDevice struct {
	NextBatch string               `json:"next_batch"`
	Events    []e2ee.ToDeviceEvent `json:"events"`
}

type ssE2EE struct {
	DeviceLists              *deviceLists   `json:"device_lists,omitempty"`
	OTKCounts                map[string]int `json:"device_one_time_keys_count"`
	FallbackKeyTypes         []string       `json:"device_unused_fallback_key_types"`
	FallbackKeyTypesUnstable []string       `json:"org.matrix.msc2732.device_unused_fallback_key_types"`
}

type ssAccountData struct {
	Global []any            `json:"global,omitempty"`
	Rooms  map[string][]any `json:"rooms,omitempty"`
}

// ssEphemeral is the receipts or typing extension: one event per room.
type ssEphemeral struct {
	Rooms map[string]any `json:"rooms"`
}

type ssSticky struct {
	NextBatch string                  `json:"next_batch,omitempty"`
	Rooms     map[string]ssStickyRoom `json:"rooms,omitempty"`
}

type ssStickyRoom struct {
	Events []any `json:"events"`
}

// extContext is what the extensions need of the rest of the response.
type extContext struct {
	dev     node.Device
	ignored map[string]bool
	prev    *connState // nil on a connection's first request
	to      *StreamToken
	// rooms are the joined rooms in the lists' windows and subscriptions;
	// initial those of them sent whole in this response (their receipts
	// and account data come from the start).
	rooms, initial []string
	// listed are the joined rooms any list or subscription matches, ranges
	// ignored (MSC4480 sends sticky events for all of them).
	listed []string
	res    map[string]*ssRoomResult
	// all is the user's room list (for the e2ee extension's device lists).
	all []ssRoom
}

// Bounds on the e2ee extension's read of what was committed since the
// previous response: events in the user's rooms, and stream entries in all.
const (
	ssMaxMemberScan = 2000
	ssMaxStreamScan = 50000
)

// extensions fills the response's extensions and says whether any had
// news.
func (a *api) extensions(ctx context.Context, req *ssRequest, ec extContext) (*ssExtensions, bool, error) {
	out := &ssExtensions{}
	news := false
	var since StreamToken
	if ec.prev != nil {
		since = ec.prev.token
	}
	x := req.Extensions
	if x.ToDevice.on() {
		td, err := a.ssToDevice(ctx, ec.dev, x.ToDevice)
		if err != nil {
			return nil, false, err
		}
		out.ToDevice, news = td, news || len(td.Events) > 0
	}
	if x.E2EE.on() {
		e, err := a.ssE2EE(ctx, ec, since)
		if err != nil {
			return nil, false, err
		}
		out.E2EE, news = e, news || e.DeviceLists != nil
	}
	if x.AccountData.on() {
		ad, err := a.ssAccountData(ctx, ec, since)
		if err != nil {
			return nil, false, err
		}
		if len(ad.Global) > 0 || len(ad.Rooms) > 0 {
			out.AccountData, news = ad, true
		}
	}
	if x.Receipts.on() {
		rc, err := a.ssReceipts(ctx, ec, since)
		if err != nil {
			return nil, false, err
		}
		if len(rc.Rooms) > 0 {
			out.Receipts, news = rc, true
		}
	}
	if x.Typing.on() {
		ty := a.ssTyping(ec, since)
		if len(ty.Rooms) > 0 {
			out.Typing, news = ty, true
		}
	}
	if x.Sticky.on() {
		st, err := a.ssSticky(ctx, ec, x.Sticky)
		if err != nil {
			return nil, false, err
		}
		if st != nil {
			out.Sticky, news = st, news || len(st.Rooms) > 0
		}
	}
	return out, news, nil
}

// ssToDevice delivers the device's inbox from the extension's since, which
// acknowledges (and deletes) everything before it.
func (a *api) ssToDevice(ctx context.Context, dev node.Device, x *ssStreamExt) (*ssToDevice, error) {
	since, err := x.since()
	if err != nil {
		return nil, err
	}
	if since > 0 {
		if err := a.n.AckToDevice(ctx, dev.UserID, dev.DeviceID, since); err != nil {
			return nil, err
		}
	}
	upper := a.n.ToDevicePosition()
	evs, upTo, err := a.n.ToDeviceSince(ctx, dev.UserID, dev.DeviceID, since, x.limit(toDeviceLimit))
	if err != nil {
		return nil, err
	}
	next := max(upper, since)
	if len(evs) > 0 {
		next = upTo
	} else {
		evs = []e2ee.ToDeviceEvent{}
	}
	return &ssToDevice{NextBatch: strconv.FormatUint(next, 10), Events: evs}, nil
}

// ssE2EE reports key counts always and device-list changes since the
// connection's previous response: users whose keys changed, and the
// members who joined or left the rooms this response carries.
func (a *api) ssE2EE(ctx context.Context, ec extContext, since StreamToken) (*ssE2EE, error) {
	user, device := ec.dev.UserID, ec.dev.DeviceID
	e := &ssE2EE{}
	var err error
	if e.OTKCounts, err = a.n.OneTimeKeyCounts(ctx, user, device); err != nil {
		return nil, err
	}
	fallback, err := a.n.UnusedFallbackKeyTypes(ctx, user, device)
	if err != nil {
		return nil, err
	}
	if fallback == nil {
		fallback = []string{}
	}
	e.FallbackKeyTypes, e.FallbackKeyTypesUnstable = fallback, fallback
	if ec.prev == nil {
		return e, nil
	}
	mc := memberChanges{joined: map[string]bool{}, left: map[string]bool{}}
	for _, rr := range ec.res {
		for _, ev := range rr.members {
			mc.note(ev, user)
		}
	}
	// Members who came or went in any of the user's rooms, in the window or
	// not: read from what was committed since the previous response, so the
	// cost follows the news, not the number of rooms. A gap too large to
	// read expires the connection (MSC4186 allows it); the client starts
	// over and, having no pos, refreshes every device list it tracks.
	if ec.to.Room > since.Room {
		joined := make(map[string]bool, len(ec.all))
		for _, r := range ec.all {
			if r.m.Membership == spec.Join || r.m.Membership == spec.Leave || r.m.Membership == spec.Ban {
				joined[r.m.RoomID] = true
			}
		}
		evs, more, err := a.n.StreamEventsSince(ctx, joined, since.Room, ec.to.Room, ssMaxMemberScan, ssMaxStreamScan)
		if err != nil {
			return nil, err
		}
		if more {
			return nil, errUnknownPos()
		}
		for _, ev := range evs {
			mc.note(ev, user)
		}
	}
	dl, err := a.deviceListDelta(ctx, user, since.DeviceList, ec.to.DeviceList, mc)
	if err != nil {
		return nil, err
	}
	if len(dl.Changed) > 0 || len(dl.Left) > 0 {
		e.DeviceLists = dl
	}
	return e, nil
}

// ssAccountData sends global account data changed since the previous
// response (all of it on the first), and room account data of the rooms
// in the response's windows: all of it for rooms sent whole.
func (a *api) ssAccountData(ctx context.Context, ec extContext, since StreamToken) (*ssAccountData, error) {
	out := &ssAccountData{Rooms: map[string][]any{}}
	inRooms := map[string]bool{}
	for _, r := range ec.rooms {
		inRooms[r] = true
	}
	initial := map[string]bool{}
	for _, r := range ec.initial {
		initial[r] = true
	}
	changes, err := a.n.AccountDataSince(ctx, ec.dev.UserID, since.AccountData, ec.to.AccountData)
	if err != nil {
		return nil, err
	}
	fromStart := since.AccountData == 0
	for _, c := range changes {
		ev := accountDataEvent{Type: c.Type, Content: rawJSON(c.Content)}
		switch {
		case c.RoomID == "":
			out.Global = append(out.Global, ev)
		case inRooms[c.RoomID] && (fromStart || !initial[c.RoomID]):
			out.Rooms[c.RoomID] = append(out.Rooms[c.RoomID], ev)
		}
	}
	if !fromStart && len(initial) > 0 {
		// Rooms new to the connection get their account data from the start.
		all, err := a.n.AccountDataSince(ctx, ec.dev.UserID, 0, ec.to.AccountData)
		if err != nil {
			return nil, err
		}
		for _, c := range all {
			if c.RoomID != "" && initial[c.RoomID] {
				out.Rooms[c.RoomID] = append(out.Rooms[c.RoomID], accountDataEvent{Type: c.Type, Content: rawJSON(c.Content)})
			}
		}
	}
	return out, nil
}

// ssReceipts sends the receipts of the rooms in the windows: changes since
// the previous response, and all of them for rooms sent whole.
func (a *api) ssReceipts(ctx context.Context, ec extContext, since StreamToken) (*ssEphemeral, error) {
	out := &ssEphemeral{Rooms: map[string]any{}}
	initial := map[string]bool{}
	for _, r := range ec.initial {
		initial[r] = true
	}
	var old []string
	for _, r := range ec.rooms {
		if !initial[r] {
			old = append(old, r)
		}
	}
	add := func(rooms []string, from uint64) error {
		if len(rooms) == 0 {
			return nil
		}
		rc, err := a.n.ReceiptsSince(ctx, ec.dev.UserID, rooms, from, ec.to.Receipt)
		if err != nil {
			return err
		}
		for roomID, content := range rc {
			out.Rooms[roomID] = accountDataEvent{Type: "m.receipt", Content: rawJSON(content)}
		}
		return nil
	}
	if err := add(old, since.Receipt); err != nil {
		return nil, err
	}
	if err := add(ec.initial, 0); err != nil {
		return nil, err
	}
	return out, nil
}

// ssTyping sends who is typing in the rooms in the windows where that
// changed since the previous response, or that are sent whole and have
// someone typing.
func (a *api) ssTyping(ec extContext, since StreamToken) *ssEphemeral {
	out := &ssEphemeral{Rooms: map[string]any{}}
	initial := map[string]bool{}
	for _, r := range ec.initial {
		initial[r] = true
	}
	for _, roomID := range ec.rooms {
		typists, pos := a.n.Typing(roomID)
		if pos > ec.to.Typing {
			continue // the next response's
		}
		fresh := ec.prev == nil || initial[roomID]
		if fresh && len(typists) == 0 || !fresh && pos <= since.Typing {
			continue
		}
		if typists == nil {
			typists = []string{}
		}
		out.Rooms[roomID] = map[string]any{"type": "m.typing", "content": map[string]any{"user_ids": typists}}
	}
	return out
}

// ssSticky pages through the unexpired sticky events of every room a list
// or subscription matches (MSC4480), oldest first, from the extension's
// since; events in this response's timelines are not repeated. next_batch
// is sent when the cursor moved.
func (a *api) ssSticky(ctx context.Context, ec extContext, x *ssStreamExt) (*ssSticky, error) {
	after, err := x.since()
	if err != nil {
		return nil, err
	}
	inTimeline := map[string]bool{}
	for _, rr := range ec.res {
		for _, ev := range rr.timeline {
			inTimeline[ev.PDU.EventID()] = true
		}
	}
	keep := func(_ string, ev *core.Event) bool {
		return !ec.ignored[string(ev.PDU.SenderID())] && !inTimeline[ev.PDU.EventID()]
	}
	// Only rooms with live sticky events are looked into: a user in 2,000
	// rooms would otherwise cost 2,000 index seeks per request.
	rooms := ec.listed
	live, ok, err := a.n.RoomsWithLiveSticky(ctx)
	if err != nil {
		return nil, err
	}
	if ok {
		rooms = slices.DeleteFunc(slices.Clone(rooms), func(r string) bool { return !live[r] })
	}
	evs, next, err := a.n.StickyEvents(ctx, node.StickyQuery{
		UserID: ec.dev.UserID, Rooms: rooms, After: after, Upto: ec.to.Room, Limit: x.limit(stickyLimit), Keep: keep,
	})
	if err != nil {
		return nil, err
	}
	if next <= after && len(evs) == 0 {
		return nil, nil
	}
	out := &ssSticky{NextBatch: strconv.FormatUint(next, 10)}
	r := newRenderer(&Filter{}, ec.dev, true)
	for _, ev := range evs {
		if out.Rooms == nil {
			out.Rooms = map[string]ssStickyRoom{}
		}
		sr := out.Rooms[ev.RoomID]
		sr.Events = append(sr.Events, r.stickyEvent(ev, ev.TTLMS))
		out.Rooms[ev.RoomID] = sr
	}
	return out, nil
}
