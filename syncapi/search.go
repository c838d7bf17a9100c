package syncapi

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"

	"github.com/edgenode/edgenode/internal/mxhttp"
	"github.com/edgenode/edgenode/node"
	"github.com/edgenode/edgenode/node/core"
	"github.com/edgenode/edgenode/node/search"
	"github.com/matrix-org/gomatrixserverlib/spec"
)

// POST /search (server-side search of room events). The index and the
// query, history visibility included, are node/search's; this file reads
// the request, applies the filter, and adds what the spec asks around each
// result: event context, profiles, current state and groups.
//
// The handler lives in the sync API, not the client API, because it is a
// reader of room events like /messages and /context: it takes the same
// RoomEventFilter and uses the same pagination for event_context.

// Bounds of a search request, beyond those of the query (node/search).
const (
	// maxSearchTermBytes bounds the search term.
	maxSearchTermBytes = 1024
	// defaultSearchLimit is the page size when the filter sets none;
	// maxSearchLimit caps the filter's.
	defaultSearchLimit = 10
	maxSearchLimit     = 100
	// defaultContextLimit is event_context's default on each side;
	// maxContextLimit caps it.
	defaultContextLimit = 5
	maxContextLimit     = 20
	// maxBatchTokenBytes bounds next_batch.
	maxBatchTokenBytes = 512
)

type searchRequest struct {
	SearchCategories *struct {
		RoomEvents *roomEventsCriteria `json:"room_events"`
	} `json:"search_categories"`
}

type roomEventsCriteria struct {
	SearchTerm   *string         `json:"search_term"`
	Keys         []string        `json:"keys"`
	Filter       json.RawMessage `json:"filter"`
	OrderBy      string          `json:"order_by"`
	EventContext *struct {
		BeforeLimit    *int `json:"before_limit"`
		AfterLimit     *int `json:"after_limit"`
		IncludeProfile bool `json:"include_profile"`
	} `json:"event_context"`
	IncludeState bool `json:"include_state"`
	Groupings    *struct {
		GroupBy []struct {
			Key string `json:"key"`
		} `json:"group_by"`
	} `json:"groupings"`
}

// searchResponse is the body of a search answer.
type searchResponse struct {
	SearchCategories struct {
		RoomEvents *roomEventsResult `json:"room_events,omitempty"`
	} `json:"search_categories"`
}

type roomEventsResult struct {
	Count      int                                     `json:"count"`
	Highlights []string                                `json:"highlights"`
	Results    []searchResult                          `json:"results"`
	State      map[string][]core.ClientEvent           `json:"state,omitempty"`
	Groups     map[string]map[string]*searchGroupEntry `json:"groups,omitempty"`
	NextBatch  string                                  `json:"next_batch,omitempty"`
}

type searchResult struct {
	Rank    float64          `json:"rank"`
	Result  core.ClientEvent `json:"result"`
	Context *searchContext   `json:"context,omitempty"`
}

type searchContext struct {
	Start        string                   `json:"start"`
	End          string                   `json:"end"`
	ProfileInfo  map[string]searchProfile `json:"profile_info,omitempty"`
	EventsBefore []core.ClientEvent       `json:"events_before"`
	EventsAfter  []core.ClientEvent       `json:"events_after"`
}

type searchProfile struct {
	DisplayName string `json:"displayname,omitempty"`
	AvatarURL   string `json:"avatar_url,omitempty"`
}

type searchGroupEntry struct {
	NextBatch string   `json:"next_batch,omitempty"`
	Order     int      `json:"order"`
	Results   []string `json:"results"`
}

// batchToken is next_batch, opaque to clients: the order it belongs to,
// the cursor, and the group it continues (when it is a group's).
type batchToken struct {
	Order      string `json:"o"`
	Rank       int    `json:"r,omitempty"`
	Pos        uint64 `json:"p"`
	Seen       int    `json:"n,omitempty"`
	GroupKey   string `json:"g,omitempty"`
	GroupValue string `json:"v,omitempty"`
}

func (t batchToken) String() string {
	b, _ := json.Marshal(t)
	return base64.RawURLEncoding.EncodeToString(b)
}

func parseBatchToken(s string) (batchToken, error) {
	var t batchToken
	bad := mxhttp.InvalidParam("unknown next_batch")
	if len(s) > maxBatchTokenBytes {
		return t, bad
	}
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || json.Unmarshal(raw, &t) != nil || t.Pos == 0 || t.Seen < 0 || t.Rank < 0 {
		return t, bad
	}
	switch t.Order {
	case "rank", "recent":
	default:
		return t, bad
	}
	switch t.GroupKey {
	case "":
		if t.GroupValue != "" {
			return t, bad
		}
	case "room_id", "sender":
		if t.GroupValue == "" {
			return t, bad
		}
	default:
		return t, bad
	}
	return t, nil
}

// searchParams is a validated search request.
type searchParams struct {
	q          search.Query
	order      string
	terms      []string
	filter     *RoomEventFilter
	before     int
	after      int
	context    bool
	profile    bool
	state      bool
	groupBy    []string
	senderOnly string // the sender group next_batch continues
}

// search serves POST /search.
func (a *api) search(w http.ResponseWriter, r *http.Request) error {
	ctx, dev := r.Context(), mxhttp.DeviceFrom(r)
	raw, err := mxhttp.ReadBody(r, 0)
	if err != nil {
		return err
	}
	var req searchRequest
	if err := mxhttp.UnmarshalBody(raw, &req); err != nil {
		return err
	}
	if req.SearchCategories == nil {
		return mxhttp.BadJSON("search_categories is required")
	}
	var resp searchResponse
	crit := req.SearchCategories.RoomEvents
	if crit == nil {
		mxhttp.WriteJSON(w, http.StatusOK, resp) // no category this server searches
		return nil
	}
	p, err := parseSearch(crit, r.URL.Query().Get("next_batch"), r.URL.Query().Has("next_batch"))
	if err != nil {
		return err
	}
	p.q.UserID = dev.UserID
	ignored, err := a.ignoredUsers(ctx, dev.UserID)
	if err != nil {
		return err
	}
	p.q.Keep = withoutIgnored(ignored, p.filter.keep())
	if s := p.senderOnly; s != "" {
		keep := p.q.Keep
		p.q.Keep = func(ev *core.Event) bool {
			return string(ev.PDU.SenderID()) == s && (keep == nil || keep(ev))
		}
	}
	res, err := a.n.SearchRoomEvents(ctx, p.q)
	if err != nil {
		return err
	}
	out, err := a.renderSearch(ctx, dev, p, res, ignored)
	if err != nil {
		return err
	}
	resp.SearchCategories.RoomEvents = out
	mxhttp.WriteJSON(w, http.StatusOK, resp)
	return nil
}

// parseSearch validates the room_events criteria and next_batch.
func parseSearch(c *roomEventsCriteria, batch string, hasBatch bool) (*searchParams, error) {
	p := &searchParams{order: "rank", before: defaultContextLimit, after: defaultContextLimit}
	if c.SearchTerm == nil {
		return nil, mxhttp.BadJSON("search_term is required")
	}
	if len(*c.SearchTerm) > maxSearchTermBytes {
		return nil, mxhttp.InvalidParam("search_term is over %d bytes", maxSearchTermBytes)
	}
	terms, _ := search.Tokens(*c.SearchTerm, search.MaxTerms+1)
	if len(terms) > search.MaxTerms {
		return nil, mxhttp.InvalidParam("search_term has over %d words", search.MaxTerms)
	}
	p.terms = terms
	p.q.Terms = terms
	// An empty list is all keys, as absent is (and as Synapse reads it).
	for _, k := range c.Keys {
		f, ok := search.FieldByKey[k]
		if !ok {
			return nil, mxhttp.InvalidParam("keys: %q is not content.body, content.name or content.topic", truncate(k, 64))
		}
		p.q.Fields = append(p.q.Fields, f)
	}
	switch c.OrderBy {
	case "", "rank":
		p.q.ByRank = true
	case "recent":
		p.order = "recent"
	default:
		return nil, mxhttp.InvalidParam("order_by must be rank or recent")
	}
	if len(c.Filter) > 0 && string(c.Filter) != "null" {
		f, err := ParseRoomEventFilter(c.Filter)
		if err != nil {
			return nil, err
		}
		p.filter = f
	}
	p.q.Limit = defaultSearchLimit
	if p.filter != nil && p.filter.Limit > 0 {
		p.q.Limit = min(p.filter.Limit, maxSearchLimit)
	}
	if f := p.filter; f != nil && (f.Rooms != nil || f.NotRooms != nil) {
		// Sets, not the filter's lists: the check runs for each of the
		// user's rooms, and a body may list thousands.
		in, out := setOf(f.Rooms), setOf(f.NotRooms)
		p.q.Rooms = func(roomID string) bool {
			return !out[roomID] && (f.Rooms == nil || in[roomID])
		}
	}
	if ec := c.EventContext; ec != nil {
		p.context, p.profile = true, ec.IncludeProfile
		for _, l := range []struct {
			v    *int
			dst  *int
			name string
		}{{ec.BeforeLimit, &p.before, "before_limit"}, {ec.AfterLimit, &p.after, "after_limit"}} {
			if l.v == nil {
				continue
			}
			if *l.v < 0 {
				return nil, mxhttp.InvalidParam("event_context.%s must not be negative", l.name)
			}
			*l.dst = min(*l.v, maxContextLimit)
		}
	}
	p.state = c.IncludeState
	if c.Groupings != nil {
		for _, g := range c.Groupings.GroupBy {
			switch g.Key {
			case "room_id", "sender":
				p.groupBy = append(p.groupBy, g.Key)
			default:
				return nil, mxhttp.InvalidParam("groupings: %q is not room_id or sender", truncate(g.Key, 64))
			}
		}
	}
	if hasBatch {
		t, err := parseBatchToken(batch)
		if err != nil {
			return nil, err
		}
		if t.Order != p.order {
			return nil, mxhttp.InvalidParam("next_batch belongs to order_by %s", t.Order)
		}
		p.q.After = &search.Cursor{Rank: t.Rank, Pos: t.Pos, Seen: t.Seen}
		if t.GroupKey != "" {
			p.restrictToGroup(t)
		}
	}
	return p, nil
}

// restrictToGroup narrows the query to the group a group's next_batch
// continues.
func (p *searchParams) restrictToGroup(t batchToken) {
	switch t.GroupKey {
	case "room_id":
		rooms := p.q.Rooms
		p.q.Rooms = func(roomID string) bool {
			return roomID == t.GroupValue && (rooms == nil || rooms(roomID))
		}
	case "sender":
		p.senderOnly = t.GroupValue // applied with the filter (search)
	}
}

// renderSearch turns the results into the response: events, context,
// profiles, state and groups.
func (a *api) renderSearch(ctx context.Context, dev node.Device, p *searchParams, res search.Result, ignored map[string]bool) (*roomEventsResult, error) {
	format := core.ClientFormat{ForUser: dev.UserID, ForDevice: dev.DeviceID}
	out := &roomEventsResult{Count: res.Count, Highlights: p.terms, Results: make([]searchResult, 0, len(res.Hits))}
	if out.Highlights == nil {
		out.Highlights = []string{}
	}
	keep := withoutIgnored(ignored, p.filter.keep())
	for _, h := range res.Hits {
		sr := searchResult{Rank: float64(h.Rank), Result: h.Event.ClientEvent(format)}
		if p.context {
			c, err := a.searchContext(ctx, dev.UserID, h.Event, p, keep, format)
			if err != nil {
				return nil, err
			}
			sr.Context = c
		}
		out.Results = append(out.Results, sr)
	}
	if res.Next != nil {
		out.NextBatch = batchToken{Order: p.order, Rank: res.Next.Rank, Pos: res.Next.Pos, Seen: res.Next.Seen}.String()
	}
	if p.state {
		state, err := a.searchState(ctx, dev.UserID, res.Hits, format)
		if err != nil {
			return nil, err
		}
		out.State = state
	}
	if len(p.groupBy) > 0 {
		out.Groups = groupResults(p, res)
	}
	return out, nil
}

// searchContext is a result's event context: events before and after it
// in its room (those the user may see and the filter keeps), tokens for
// /messages on either side, and, when asked, the senders' profiles as of
// the result.
func (a *api) searchContext(ctx context.Context, userID string, ev *core.Event, p *searchParams, keep func(*core.Event) bool, format core.ClientFormat) (*searchContext, error) {
	roomID := ev.PDU.RoomID().String()
	c := &searchContext{}
	before, err := a.paginate(ctx, userID, roomID, span{from: ev.Pos - 1, backwards: true, history: true}, p.before, keep)
	if err != nil {
		return nil, err
	}
	now := a.n.StreamPosition()
	after, err := a.paginate(ctx, userID, roomID, span{from: ev.Pos, to: now, hasTo: true, history: true}, p.after, keep)
	if err != nil {
		return nil, err
	}
	start := ev.Pos - 1
	if n := len(before.events); n > 0 {
		start = before.events[n-1].Pos - 1
	}
	if before.more {
		start = before.end
	}
	end := max(now, ev.Pos)
	if after.more {
		end = after.end
	} else if n := len(after.events); n > 0 {
		end = max(end, after.events[n-1].Pos)
	}
	c.Start, c.End = StreamToken{Room: start}.String(), StreamToken{Room: end}.String()
	if p.before == 0 {
		before.events = nil
	}
	if p.after == 0 {
		after.events = nil
	}
	c.EventsBefore = clientEvents(before.events, format)
	c.EventsAfter = clientEvents(after.events, format)
	if p.profile {
		prof, err := a.searchProfiles(ctx, ev, before.events, after.events)
		if err != nil {
			return nil, err
		}
		c.ProfileInfo = prof
	}
	return c, nil
}

// searchProfiles are the display names and avatars of the senders of a
// result and its context, from their member events in the room's state at
// the result (the "historic profile" the spec asks for).
func (a *api) searchProfiles(ctx context.Context, ev *core.Event, around ...[]*core.Event) (map[string]searchProfile, error) {
	seen := map[string]bool{string(ev.PDU.SenderID()): true}
	keys := []core.StateKey{{EventType: spec.MRoomMember, StateKey: string(ev.PDU.SenderID())}}
	for _, evs := range around {
		for _, e := range evs {
			if s := string(e.PDU.SenderID()); !seen[s] {
				seen[s] = true
				keys = append(keys, core.StateKey{EventType: spec.MRoomMember, StateKey: s})
			}
		}
	}
	members, err := a.n.StateAfterEvent(ctx, ev.PDU.EventID(), keys)
	if err != nil {
		return nil, err
	}
	out := map[string]searchProfile{}
	for _, m := range members {
		var c searchProfile
		_ = json.Unmarshal(m.PDU.Content(), &c)
		if sk := m.PDU.StateKey(); sk != nil {
			out[*sk] = c
		}
	}
	return out, nil
}

// searchState is the current state of each room with results that the
// user is joined to now (a room they left shows nothing of its state
// since).
func (a *api) searchState(ctx context.Context, userID string, hits []search.Hit, format core.ClientFormat) (map[string][]core.ClientEvent, error) {
	out := map[string][]core.ClientEvent{}
	for _, h := range hits {
		roomID := h.Event.PDU.RoomID().String()
		if _, ok := out[roomID]; ok {
			continue
		}
		mi, err := a.n.Membership(ctx, roomID, userID)
		if err != nil {
			return nil, err
		}
		if mi.Membership != spec.Join {
			continue
		}
		state, err := a.n.CurrentState(ctx, roomID)
		if err != nil {
			return nil, err
		}
		out[roomID] = clientEvents(state, format)
	}
	return out, nil
}

// groupResults partitions the page's results by room or sender. A group's
// order is the rank of its first result on the page (1 for the first
// group); its next_batch, when the page has a next one, continues that
// group alone.
func groupResults(p *searchParams, res search.Result) map[string]map[string]*searchGroupEntry {
	out := map[string]map[string]*searchGroupEntry{}
	for _, key := range p.groupBy {
		groups := map[string]*searchGroupEntry{}
		for _, h := range res.Hits {
			v := h.Event.PDU.RoomID().String()
			if key == "sender" {
				v = string(h.Event.PDU.SenderID())
			}
			g := groups[v]
			if g == nil {
				g = &searchGroupEntry{Order: len(groups) + 1}
				groups[v] = g
			}
			g.Results = append(g.Results, h.Event.PDU.EventID())
			if res.Next != nil {
				g.NextBatch = batchToken{Order: p.order, Rank: res.Next.Rank, Pos: res.Next.Pos, Seen: res.Next.Seen, GroupKey: key, GroupValue: v}.String()
			}
		}
		out[key] = groups
	}
	return out
}

func setOf(ids []string) map[string]bool {
	m := make(map[string]bool, len(ids))
	for _, id := range ids {
		m[id] = true
	}
	return m
}
