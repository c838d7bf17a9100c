package syncapi

import (
	"encoding/json"
	"slices"
	"strings"

	"github.com/edgenode/edgenode/internal/mxhttp"
	"github.com/edgenode/edgenode/node/core"
)

// Filter is the spec's filter definition (POST /user/{userId}/filter, and
// /sync's filter parameter). The zero value filters nothing out.
//
// Throughout, a nil list means the key was absent (no restriction) while an
// empty list means the key was present and empty (for an include list:
// nothing passes). The list fields therefore have no omitempty, so a filter
// that is encoded again keeps its meaning.
type Filter struct {
	// EventFields are dot-separated paths of the event fields to include;
	// nil means all (see ProjectFields).
	EventFields []string `json:"event_fields"`
	// EventFormat is "client" (the default) or "federation".
	EventFormat string      `json:"event_format,omitempty"`
	Presence    EventFilter `json:"presence"`
	AccountData EventFilter `json:"account_data"`
	Room        RoomFilter  `json:"room"`
}

// RoomFilter selects the rooms /sync reports and what it reports of them.
type RoomFilter struct {
	// Rooms and NotRooms apply before the per-section filters below.
	Rooms        []string        `json:"rooms"`
	NotRooms     []string        `json:"not_rooms"`
	Ephemeral    RoomEventFilter `json:"ephemeral"`
	IncludeLeave bool            `json:"include_leave,omitempty"`
	State        RoomEventFilter `json:"state"`
	Timeline     RoomEventFilter `json:"timeline"`
	AccountData  RoomEventFilter `json:"account_data"`
}

// EventFilter selects events by type and sender, and caps how many are
// returned.
type EventFilter struct {
	// Limit is the most events to return; 0 means the endpoint's default.
	Limit int `json:"limit,omitempty"`
	// Types and NotTypes may use '*' to match any run of characters.
	// NotTypes wins over Types.
	Types    []string `json:"types"`
	NotTypes []string `json:"not_types"`
	// Senders and NotSenders are exact user IDs. NotSenders wins over Senders.
	Senders    []string `json:"senders"`
	NotSenders []string `json:"not_senders"`
}

// RoomEventFilter is an EventFilter for room events: it can also select by
// room and by whether content has a url, and it switches lazy-loading of
// members on.
type RoomEventFilter struct {
	EventFilter
	Rooms    []string `json:"rooms"`
	NotRooms []string `json:"not_rooms"`
	// ContainsURL, when set, keeps only events whose content has a string
	// "url" (true) or only those without (false).
	ContainsURL *bool `json:"contains_url,omitempty"`
	// LazyLoadMembers sends member events only for the senders of the
	// events returned.
	LazyLoadMembers bool `json:"lazy_load_members,omitempty"`
	// IncludeRedundantMembers sends those member events even when the
	// client already has them. Only meaningful with LazyLoadMembers.
	IncludeRedundantMembers bool `json:"include_redundant_members,omitempty"`
	// UnreadThreadNotifications asks /sync for per-thread counts.
	UnreadThreadNotifications bool `json:"unread_thread_notifications,omitempty"`
	// The relation filters (filter_relations.go). Empty lists restrict
	// nothing, so these are omitted when empty.
	RelationFilter
}

// ParseFilter decodes and validates a filter definition. A value of the
// wrong shape is 400 M_BAD_JSON.
func ParseFilter(raw []byte) (*Filter, error) {
	var f Filter
	if err := mxhttp.UnmarshalBody(raw, &f); err != nil {
		return nil, err
	}
	if err := f.Validate(); err != nil {
		return nil, err
	}
	return &f, nil
}

// ParseRoomEventFilter decodes and validates a RoomEventFilter, such as the
// filter parameter of /messages and /context.
func ParseRoomEventFilter(raw []byte) (*RoomEventFilter, error) {
	var f RoomEventFilter
	if err := mxhttp.UnmarshalBody(raw, &f); err != nil {
		return nil, err
	}
	if err := f.validate("filter"); err != nil {
		return nil, err
	}
	return &f, nil
}

// Validate checks what the JSON types cannot: the enum, the ID sigils, and
// that limits are not negative. Failures are 400 M_BAD_JSON.
func (f *Filter) Validate() error {
	switch f.EventFormat {
	case "", "client", "federation":
	default:
		return mxhttp.BadJSON("event_format must be client or federation")
	}
	for _, p := range f.EventFields {
		if p == "" {
			return mxhttp.BadJSON("event_fields: empty path")
		}
	}
	checks := []error{
		f.Presence.validate("presence"),
		f.AccountData.validate("account_data"),
		validateIDs("room.rooms", f.Room.Rooms, '!'),
		validateIDs("room.not_rooms", f.Room.NotRooms, '!'),
		f.Room.Ephemeral.validate("room.ephemeral"),
		f.Room.State.validate("room.state"),
		f.Room.Timeline.validate("room.timeline"),
		f.Room.AccountData.validate("room.account_data"),
	}
	for _, err := range checks {
		if err != nil {
			return err
		}
	}
	return nil
}

func (f *EventFilter) validate(where string) error {
	if f.Limit < 0 {
		return mxhttp.BadJSON("%s.limit must not be negative", where)
	}
	if err := validateIDs(where+".senders", f.Senders, '@'); err != nil {
		return err
	}
	return validateIDs(where+".not_senders", f.NotSenders, '@')
}

func (f *RoomEventFilter) validate(where string) error {
	if err := f.EventFilter.validate(where); err != nil {
		return err
	}
	if err := validateIDs(where+".rooms", f.Rooms, '!'); err != nil {
		return err
	}
	if err := validateIDs(where+".not_rooms", f.NotRooms, '!'); err != nil {
		return err
	}
	return f.RelationFilter.validate(where)
}

func validateIDs(where string, ids []string, sigil byte) error {
	for _, id := range ids {
		if len(id) < 2 || id[0] != sigil {
			return mxhttp.BadJSON("%s: %q does not start with %q", where, truncate(id, 64), string(sigil))
		}
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// Match reports whether an event of type evType sent by sender passes the
// type and sender lists. A nil filter passes everything.
func (f *EventFilter) Match(evType, sender string) bool {
	if f == nil {
		return true
	}
	if slices.Contains(f.NotSenders, sender) {
		return false
	}
	if f.Senders != nil && !slices.Contains(f.Senders, sender) {
		return false
	}
	if matchAnyType(f.NotTypes, evType) {
		return false
	}
	return f.Types == nil || matchAnyType(f.Types, evType)
}

// MatchRoom reports whether roomID passes the room lists.
func (f *RoomEventFilter) MatchRoom(roomID string) bool {
	return f == nil || matchRoom(f.Rooms, f.NotRooms, roomID)
}

// MatchRoom reports whether /sync should consider roomID at all.
func (f *RoomFilter) MatchRoom(roomID string) bool {
	return f == nil || matchRoom(f.Rooms, f.NotRooms, roomID)
}

func matchRoom(rooms, notRooms []string, roomID string) bool {
	if slices.Contains(notRooms, roomID) {
		return false
	}
	return rooms == nil || slices.Contains(rooms, roomID)
}

// MatchFields applies every part of the filter to an event given by its
// room, type, sender and content. content is only read when ContainsURL or
// a rel_types filter is set.
func (f *RoomEventFilter) MatchFields(roomID, evType, sender string, content []byte) bool {
	if f == nil {
		return true
	}
	if !f.MatchRoom(roomID) || !f.EventFilter.Match(evType, sender) {
		return false
	}
	if f.ContainsURL != nil && hasURL(content) != *f.ContainsURL {
		return false
	}
	return f.RelationFilter.matchRelType(content)
}

// MatchEvent applies the filter to a stored room event.
func (f *RoomEventFilter) MatchEvent(ev *core.Event) bool {
	if f == nil {
		return true
	}
	p := ev.PDU
	return f.MatchFields(p.RoomID().String(), p.Type(), string(p.SenderID()), p.Content())
}

// hasURL is what contains_url tests: a "url" key holding a string (as
// Synapse does; a url that is not a string is no media).
func hasURL(content []byte) bool {
	var c struct {
		URL json.RawMessage `json:"url"`
	}
	if json.Unmarshal(content, &c) != nil {
		return false
	}
	return len(c.URL) > 0 && c.URL[0] == '"'
}

// LimitOr returns the filter's limit, or def when it has none, never more
// than max.
func (f *EventFilter) LimitOr(def, max int) int {
	l := def
	if f != nil && f.Limit > 0 {
		l = f.Limit
	}
	return min(l, max)
}

func matchAnyType(patterns []string, evType string) bool {
	for _, p := range patterns {
		if matchWildcard(p, evType) {
			return true
		}
	}
	return false
}

// matchWildcard matches s against pattern, where '*' stands for any run of
// characters (possibly empty) and every other character is literal. No
// regexps: patterns come from clients, and this is linear in len(s) per
// segment.
func matchWildcard(pattern, s string) bool {
	if !strings.Contains(pattern, "*") {
		return pattern == s
	}
	segs := strings.Split(pattern, "*")
	first, last := segs[0], segs[len(segs)-1]
	if !strings.HasPrefix(s, first) {
		return false
	}
	s = s[len(first):]
	for _, seg := range segs[1 : len(segs)-1] {
		i := strings.Index(s, seg)
		if i < 0 {
			return false
		}
		s = s[i+len(seg):]
	}
	// What is left must end with the last segment; the prefix and middle
	// segments are already consumed, so they cannot overlap it.
	return strings.HasSuffix(s, last)
}
