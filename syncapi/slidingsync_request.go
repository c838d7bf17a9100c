package syncapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/edgenode/edgenode/internal/mxhttp"
	"github.com/edgenode/edgenode/node"
	"github.com/edgenode/edgenode/node/core"
)

// Bounds on what one sliding sync request may ask for (MSC4186 caps lists
// and subscriptions at 100 each).
const (
	ssMaxLists         = 100
	ssMaxSubscriptions = 100
	ssMaxRanges        = 10
	ssMaxStateElements = 100
	ssMaxBody          = 1 << 20
	ssMaxConnIDLen     = 256
)

// ssRequest is a parsed sliding sync request. Both dialects are read: the
// one matrix-js-sdk and Synapse speak (ranges, required_state as
// [type, state_key] pairs, pos and timeout in the query) and the MSC's
// current one (range, required_state.include/exclude/lazy_members, pos and
// timeout in the body).
type ssRequest struct {
	ConnID            string                  `json:"conn_id"`
	Pos               string                  `json:"pos"`
	Timeout           *int64                  `json:"timeout"`
	Lists             map[string]ssList       `json:"lists"`
	RoomSubscriptions map[string]ssRoomConfig `json:"room_subscriptions"`
	UnsubscribeRooms  []string                `json:"unsubscribe_rooms"`
	Extensions        ssExtensionsRequest     `json:"extensions"`
	SetPresence       string                  `json:"set_presence"`

	dev     node.Device
	timeout time.Duration
}

// ssRoomConfig is what to return of a room: a room subscription, or the
// part of a list that says it.
type ssRoomConfig struct {
	TimelineLimit int           `json:"timeline_limit"`
	RequiredState requiredState `json:"required_state"`
}

// ssList is one list of the request.
type ssList struct {
	ssRoomConfig
	Ranges  [][2]int   `json:"ranges"`
	Range   *[2]int    `json:"range"`
	Filters *ssFilters `json:"filters"`
}

// ssFilters are a list's room filters; nil fields do not filter.
type ssFilters struct {
	IsDM         *bool     `json:"is_dm"`
	IsEncrypted  *bool     `json:"is_encrypted"`
	IsInvite     *bool     `json:"is_invite"`
	IsInvited    *bool     `json:"is_invited"`
	RoomTypes    []*string `json:"room_types"`
	NotRoomTypes []*string `json:"not_room_types"`
	Spaces       []string  `json:"spaces"`
	Tags         []string  `json:"tags"`
	NotTags      []string  `json:"not_tags"`
}

// invited is is_invited, or its older name is_invite.
func (f *ssFilters) invited() *bool {
	if f.IsInvited != nil {
		return f.IsInvited
	}
	return f.IsInvite
}

// stateMatch matches state keys: an empty type or key (from "*" or an
// omitted field) matches any; me stands for the syncing user ("$ME").
type stateMatch struct {
	Type, Key string
	anyType   bool
	anyKey    bool
	me        bool
}

func (m stateMatch) match(k core.StateKey, self string) bool {
	if !m.anyType && m.Type != k.EventType {
		return false
	}
	switch {
	case m.anyKey:
		return true
	case m.me:
		return k.StateKey == self
	}
	return m.Key == k.StateKey
}

// requiredState is the state a room config asks for.
type requiredState struct {
	include, exclude []stateMatch
	lazy             bool
}

// UnmarshalJSON reads either dialect: [[type, state_key], ...] with "*",
// "$LAZY" and "$ME", or {"include": [...], "exclude": [...],
// "lazy_members": bool}.
func (rs *requiredState) UnmarshalJSON(b []byte) error {
	*rs = requiredState{}
	b = bytes.TrimSpace(b)
	if len(b) == 0 || string(b) == "null" {
		return nil
	}
	if b[0] == '[' {
		var pairs [][]string
		if err := json.Unmarshal(b, &pairs); err != nil {
			return err
		}
		if len(pairs) > ssMaxStateElements {
			return fmt.Errorf("required_state: more than %d entries", ssMaxStateElements)
		}
		for _, p := range pairs {
			if len(p) != 2 {
				return fmt.Errorf("required_state: want [type, state_key] pairs")
			}
			if p[0] == "m.room.member" && p[1] == "$LAZY" {
				rs.lazy = true
				continue
			}
			rs.include = append(rs.include, newStateMatch(p[0], p[1], p[0] == "*", p[1] == "*"))
		}
		return nil
	}
	type element struct {
		Type     *string `json:"type"`
		StateKey *string `json:"state_key"`
	}
	var obj struct {
		Include     []element `json:"include"`
		Exclude     []element `json:"exclude"`
		LazyMembers bool      `json:"lazy_members"`
	}
	if err := json.Unmarshal(b, &obj); err != nil {
		return err
	}
	if len(obj.Include)+len(obj.Exclude) > ssMaxStateElements {
		return fmt.Errorf("required_state: more than %d entries", ssMaxStateElements)
	}
	conv := func(els []element) []stateMatch {
		var out []stateMatch
		for _, e := range els {
			t, k := "", ""
			if e.Type != nil {
				t = *e.Type
			}
			if e.StateKey != nil {
				k = *e.StateKey
			}
			out = append(out, newStateMatch(t, k, e.Type == nil || t == "*", e.StateKey == nil || k == "*"))
		}
		return out
	}
	rs.include, rs.exclude, rs.lazy = conv(obj.Include), conv(obj.Exclude), obj.LazyMembers
	return nil
}

func newStateMatch(t, k string, anyType, anyKey bool) stateMatch {
	return stateMatch{Type: t, Key: k, anyType: anyType, anyKey: anyKey, me: k == "$ME"}
}

// key is a canonical string for the config, to notice when a room's
// required state changes between requests.
func (rs requiredState) key() string {
	var parts []string
	for _, m := range rs.include {
		parts = append(parts, fmt.Sprintf("+%v%s|%v%s|%v", m.anyType, m.Type, m.anyKey, m.Key, m.me))
	}
	for _, m := range rs.exclude {
		parts = append(parts, fmt.Sprintf("-%v%s|%v%s|%v", m.anyType, m.Type, m.anyKey, m.Key, m.me))
	}
	slices.Sort(parts)
	if rs.lazy {
		parts = append(parts, "lazy")
	}
	return strings.Join(parts, ",")
}

// roomConfig is the combination of every config matching a room: the
// largest timeline limit and the union of the required states.
type roomConfig struct {
	limit int
	state []requiredState
}

func (c *roomConfig) add(rc ssRoomConfig) {
	c.limit = max(c.limit, min(max(rc.TimelineLimit, 0), maxTimelineLimit))
	c.state = append(c.state, rc.RequiredState)
}

// wants says whether the combined config returns the state entry k.
func (c *roomConfig) wants(k core.StateKey, self string) bool {
	for _, rs := range c.state {
		in := false
		for _, m := range rs.include {
			if m.match(k, self) {
				in = true
				break
			}
		}
		for _, m := range rs.exclude {
			if in && m.match(k, self) {
				in = false
			}
		}
		if in {
			return true
		}
	}
	return false
}

// lazy says whether member events of the timeline's senders are added.
func (c *roomConfig) lazy() bool {
	for _, rs := range c.state {
		if rs.lazy {
			return true
		}
	}
	return false
}

// stateKey is the canonical form of the combined required state: its
// configs' keys, sorted, NUL-separated.
func (c *roomConfig) stateKey() string {
	keys := make([]string, 0, len(c.state))
	for _, rs := range c.state {
		keys = append(keys, rs.key())
	}
	slices.Sort(keys)
	keys = slices.Compact(keys)
	return strings.Join(keys, "\x00")
}

// stateCovered says whether every config of the combined required state
// now was also in force when the room was last sent (then): only a config
// added since can ask for state the client lacks.
func stateCovered(then, now string) bool {
	if then == now || now == "" {
		return true
	}
	had := strings.Split(then, "\x00")
	for _, k := range strings.Split(now, "\x00") {
		if !slices.Contains(had, k) {
			return false
		}
	}
	return true
}

// parseSlidingSync reads the request body and the query (where
// matrix-js-sdk puts pos and timeout) and checks the bounds.
func parseSlidingSync(r *http.Request) (*ssRequest, error) {
	req := &ssRequest{dev: mxhttp.DeviceFrom(r)}
	raw, err := mxhttp.ReadBody(r, ssMaxBody)
	if err != nil {
		return nil, err
	}
	if len(bytes.TrimSpace(raw)) > 0 {
		if err := mxhttp.UnmarshalBody(raw, req); err != nil {
			return nil, err
		}
	}
	q := r.URL.Query()
	if p := q.Get("pos"); p != "" {
		req.Pos = p
	}
	if t := q.Get("timeout"); t != "" {
		ms, err := strconv.ParseInt(t, 10, 64)
		if err != nil {
			return nil, mxhttp.InvalidParam("timeout must be a number of milliseconds")
		}
		req.Timeout = &ms
	}
	if req.Timeout != nil {
		if *req.Timeout < 0 {
			return nil, mxhttp.InvalidParam("timeout must be a non-negative number of milliseconds")
		}
		req.timeout = time.Duration(min(*req.Timeout, maxSyncTimeout.Milliseconds())) * time.Millisecond
	}
	if p := q.Get("set_presence"); p != "" {
		req.SetPresence = p
	}
	switch req.SetPresence {
	case "", node.PresenceOnline, node.PresenceOffline, node.PresenceUnavailable:
	default:
		return nil, mxhttp.InvalidParam("set_presence must be online, offline or unavailable")
	}
	if len(req.ConnID) > ssMaxConnIDLen {
		return nil, mxhttp.InvalidParam("conn_id is too long")
	}
	if len(req.Lists) > ssMaxLists {
		return nil, mxhttp.InvalidParam("at most %d lists", ssMaxLists)
	}
	if len(req.RoomSubscriptions) > ssMaxSubscriptions || len(req.UnsubscribeRooms) > ssMaxSubscriptions {
		return nil, mxhttp.InvalidParam("at most %d room subscriptions", ssMaxSubscriptions)
	}
	for name, l := range req.Lists {
		if len(l.Ranges) > ssMaxRanges {
			return nil, mxhttp.InvalidParam("list %q: at most %d ranges", name, ssMaxRanges)
		}
		for _, rg := range l.ranges() {
			if rg[0] < 0 || rg[1] < rg[0] {
				return nil, mxhttp.InvalidParam("list %q: bad range %v", name, rg)
			}
		}
	}
	return req, nil
}

// ranges are the list's ranges in either dialect; nil means the whole list.
func (l ssList) ranges() [][2]int {
	if l.Range != nil {
		return [][2]int{*l.Range}
	}
	return l.Ranges
}
