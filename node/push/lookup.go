package push

import (
	"encoding/json"

	"github.com/edgenode/edgenode/node/core"
	"github.com/matrix-org/gomatrixserverlib"
	"github.com/matrix-org/gomatrixserverlib/spec"
)

// pushLookup builds pushContexts from room state, caching what it loads
// across the events of a batch or a recount. The first load error is kept
// in err: the rules cannot return one, so callers check it after each
// decision.
type pushLookup struct {
	load   func(eventID string) (gomatrixserverlib.PDU, error)
	names  map[string]string                               // member event ID -> display name
	levels map[string]*gomatrixserverlib.PowerLevelContent // power levels event ID -> content
	counts map[string]memberCount                          // state ID -> joined members counted
	err    error
}

// memberCount is a count of a state's joined members: exact, or stopped
// once it reached n.
type memberCount struct {
	n     int
	exact bool
}

// context answers for an event whose room state (as of the event) state
// returns, read only if a rule asks.
func (l *pushLookup) context(state func() (*core.State, error), sender string) pushContext {
	var s *core.State
	get := func() *core.State {
		if s == nil && l.err == nil {
			s, l.err = state()
		}
		return s
	}
	return pushContext{
		displayName: func(userID string) string {
			st := get()
			if st == nil {
				return ""
			}
			return l.displayName(st, userID)
		},
		senderMayNotify: func(key string) bool {
			st := get()
			return st != nil && l.mayNotify(st, sender, key)
		},
		memberCount: func(limit int) int {
			st := get()
			if st == nil {
				return 0
			}
			return l.joinedMembers(st, limit)
		},
	}
}

// joinedMembers counts the joined members in s, stopping at limit (so a
// rule asking "is 2" in a room of thousands reads three member events).
// Counts are cached by state ID for the lookup's batch.
func (l *pushLookup) joinedMembers(s *core.State, limit int) int {
	id := s.ID()
	if c, ok := l.counts[id]; ok && id != "" && (c.exact || c.n >= limit) {
		return min(c.n, limit)
	}
	n, exact := 0, true
	s.Each(func(k core.StateKey, eventID string) {
		if k.EventType != spec.MRoomMember || !exact || l.err != nil {
			return
		}
		if n >= limit {
			exact = false
			return
		}
		pdu, err := l.load(eventID)
		if err != nil {
			l.err = err
			return
		}
		if m, err := pdu.Membership(); err == nil && m == spec.Join {
			n++
		}
	})
	if id != "" && l.err == nil {
		if l.counts == nil {
			l.counts = map[string]memberCount{}
		}
		l.counts[id] = memberCount{n: n, exact: exact}
	}
	return n
}

// displayName is userID's displayname in their member event in s.
func (l *pushLookup) displayName(s *core.State, userID string) string {
	id, ok := s.Get(spec.MRoomMember, userID)
	if !ok {
		return ""
	}
	if name, ok := l.names[id]; ok {
		return name
	}
	pdu, err := l.load(id)
	if err != nil {
		l.err = err
		return ""
	}
	var c struct {
		DisplayName json.RawMessage `json:"displayname"`
	}
	_ = json.Unmarshal(pdu.Content(), &c) // bad content: no name
	name, _ := jsonString(c.DisplayName)
	if l.names == nil {
		l.names = map[string]string{}
	}
	l.names[id] = name
	return name
}

// mayNotify reports whether sender's power level in s reaches
// notifications.<key> (50 unless set). Without a power levels event the
// room's creator has every power and everyone else none.
func (l *pushLookup) mayNotify(s *core.State, sender, key string) bool {
	id, ok := s.Get(spec.MRoomPowerLevels, "")
	if !ok {
		createID, ok := s.Get(spec.MRoomCreate, "")
		if !ok {
			return false
		}
		create, err := l.load(createID)
		if err != nil {
			l.err = err
			return false
		}
		return string(create.SenderID()) == sender
	}
	pl, ok := l.levels[id]
	if !ok {
		pdu, err := l.load(id)
		if err != nil {
			l.err = err
			return false
		}
		if pl, err = pdu.PowerLevels(); err != nil {
			pl = nil // unparseable levels give no one the power
		}
		if l.levels == nil {
			l.levels = map[string]*gomatrixserverlib.PowerLevelContent{}
		}
		l.levels[id] = pl
	}
	return pl != nil && pl.UserLevel(spec.SenderID(sender)) >= pl.NotificationLevel(key)
}
