package search

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/edgenode/edgenode/kv"
	"github.com/edgenode/edgenode/node/core"
	"github.com/matrix-org/gomatrixserverlib/spec"
)

// Bounds on one query's work. A search for a word in every message of a
// large room would otherwise read its whole history; instead the scan
// stops, newest first, after MaxPostingsScanned postings, and the results
// cover the events it reached (next_batch carries on from there when
// ordering by recency).
const (
	// MaxTerms is the most distinct words a search term may have.
	MaxTerms = 16
	// MaxPostingsScanned is the postings one query reads, over all its
	// words and rooms: each word's scan in each room may read its share.
	MaxPostingsScanned = 20_000
	// minPostingsPerScan is the least one word's scan in one room may read,
	// so a user in many rooms still gets pages: a query's work is at most
	// max(MaxPostingsScanned, MaxTerms*MaxRooms*minPostingsPerScan).
	minPostingsPerScan = 16
	// MaxEventsLoaded bounds the events one query loads to apply the
	// filter (senders, contains_url) and render.
	MaxEventsLoaded = 2_000
	// MaxRooms bounds the rooms one query searches: the user's most recent
	// memberships beyond it are left out.
	MaxRooms = 1_000
)

// Query is one search of room events for one user.
type Query struct {
	UserID string
	// Terms are the search term's tokens (Tokens), distinct, at most
	// MaxTerms; an event matches when it has all of them in one field.
	Terms []string
	// Fields are the keys searched; empty means all.
	Fields []Field
	// Rooms, when non-nil, keeps only the rooms it accepts.
	Rooms func(roomID string) bool
	// Keep, when non-nil, is the event filter (senders, types, contains_url,
	// ignored users) applied to the events returned.
	Keep func(*core.Event) bool
	// ByRank orders by rank (then recency); otherwise by recency.
	ByRank bool
	// After resumes after a previous page's last result (nil: from the top).
	After *Cursor
	// Limit is the most results returned.
	Limit int
}

// Cursor is where a page of results ended: the last result's rank and
// stream position. The next page has the results after it in the order.
type Cursor struct {
	Rank int
	Pos  uint64
	// Seen is how many results the count found before the cursor. Ordered
	// by recency, a page scans only below its cursor, so the count of
	// later pages adds it to stay the total a first page gave.
	Seen int
}

// Hit is one result: the event and its rank (the number of occurrences of
// the search's words in the matched field).
type Hit struct {
	Event *core.Event
	Rank  int
}

// Result is a page of results.
type Result struct {
	Hits []Hit
	// Count is the number of matching events the user may see among those
	// the scan reached (an approximation, as the spec allows: the sender
	// and contains_url filters are applied to returned results only).
	Count int
	// Next is where the next page starts; nil when there is none.
	Next *Cursor
}

// candidate is an event that matched every term in some field.
type candidate struct {
	room int // index in the query's rooms
	pos  uint64
	rank int
	// state numbers the event's state-before snapshot (snapshots.ids).
	state int32
}

// snapshots numbers the state-before snapshot IDs a query meets, so that
// a posting costs no string and the visibility cache is a slice. Snapshot
// IDs are content hashes of a room's state, which includes its create
// event, so one ID never stands for two rooms.
type snapshots struct {
	num map[string]int32
	ids []string
}

func (ss *snapshots) number(id []byte) int32 {
	if n, ok := ss.num[string(id)]; ok {
		return n
	}
	n := int32(len(ss.ids))
	ss.ids = append(ss.ids, string(id))
	ss.num[string(id)] = n
	return n
}

// termPosting is one term's posting for an event, as a scan keeps it.
type termPosting struct {
	pos   uint64
	count int
	state int32
}

// termScan is one term's scan in one room.
type termScan struct {
	// list holds the postings read, newest first.
	list []termPosting
	// at indexes list by position, built only when another term's
	// events are checked against this one.
	at map[uint64]int
	// cut is true when the budget stopped the scan; last is then the
	// oldest position it read, and postings older than it are unknown.
	cut  bool
	last uint64
}

// lookup finds the scan's posting at pos.
func (ts *termScan) lookup(pos uint64) (termPosting, bool) {
	if ts.at == nil {
		ts.at = make(map[uint64]int, len(ts.list))
		for i, p := range ts.list {
			ts.at[p.pos] = i
		}
	}
	i, ok := ts.at[pos]
	if !ok {
		return termPosting{}, false
	}
	return ts.list[i], true
}

// SearchRoomEvents runs q over the rooms q.UserID has been joined to (joined
// now, or left or banned since), returning only events they may see by the
// room's history visibility.
func (s *Search) SearchRoomEvents(ctx context.Context, q Query) (Result, error) {
	var res Result
	if len(q.Terms) == 0 || len(q.Terms) > MaxTerms || q.Limit <= 0 {
		return res, nil
	}
	rooms, err := s.searchRooms(ctx, q)
	if err != nil || len(rooms) == 0 {
		return res, err
	}
	err = s.DB.View(func(tx *kv.Txn) error {
		ss := &snapshots{num: map[string]int32{}}
		cands, frontier, err := s.scan(ctx, tx, q, rooms, ss)
		if err != nil {
			return err
		}
		return s.collect(ctx, tx, q, rooms, ss, cands, frontier, &res)
	})
	return res, err
}

// searchRooms lists the rooms to search: those the user is joined to,
// then those they left or were banned from (leaving after a join leaves
// the history they saw visible; after a rejected invite it leaves nothing,
// which the visibility check finds). Past MaxRooms, the rooms left longest
// ago are dropped.
func (s *Search) searchRooms(ctx context.Context, q Query) ([]string, error) {
	ms, err := s.Memberships(ctx, q.UserID)
	if err != nil {
		return nil, err
	}
	rank := func(m core.RoomMembership) int {
		switch {
		case m.OutOfBand || m.Forgotten || q.Rooms != nil && !q.Rooms(m.RoomID):
			return 0
		case m.Membership == spec.Join:
			return 2
		case m.Membership == spec.Leave || m.Membership == spec.Ban:
			return 1
		}
		return 0
	}
	ms = slices.DeleteFunc(ms, func(m core.RoomMembership) bool { return rank(m) == 0 })
	slices.SortFunc(ms, func(a, b core.RoomMembership) int {
		if ra, rb := rank(a), rank(b); ra != rb {
			return cmp.Compare(rb, ra)
		}
		return cmp.Compare(b.Pos, a.Pos)
	})
	rooms := make([]string, 0, min(len(ms), MaxRooms))
	for _, m := range ms[:min(len(ms), MaxRooms)] {
		rooms = append(rooms, m.RoomID)
	}
	return rooms, nil
}

// scan reads every term's postings in every room, newest first and below
// the cursor when ordering by recency, and returns the events that have
// every term in one field. frontier is the highest position a scan stopped
// at because of the budget (0 if none did): events at or below it may have
// been missed, so only those above it are complete.
//
// In a room where one term's scan read all of its postings (a rare word),
// that term drives: its events are checked for the other terms, by point
// reads past where their scans stopped, so a rare word and a common one
// find every event that has both, and set no frontier.
//
// It runs for every posting the budget allows, so it allocates as little
// as it can per posting: snapshot IDs are interned and event IDs are not
// read (collect finds the few it needs in the timeline).
func (s *Search) scan(ctx context.Context, tx *kv.Txn, q Query, rooms []string, ss *snapshots) ([]candidate, uint64, error) {
	perScan := max(s.maxScan/(len(q.Terms)*len(rooms)), min(minPostingsPerScan, s.maxScan))
	var frontier uint64
	var cands []candidate
	scans := make([]termScan, len(q.Terms))
	for ri, roomID := range rooms {
		if err := ctx.Err(); err != nil {
			return nil, 0, err
		}
		if !q.ByRank && q.After != nil && q.After.Pos <= 1 {
			break // nothing precedes the cursor
		}
		driver, absent := -1, false
		for i, term := range q.Terms {
			ts, err := s.scanTerm(tx, q, term, roomID, perScan, ss)
			if err != nil {
				return nil, 0, err
			}
			scans[i] = ts
			if len(ts.list) == 0 && !ts.cut {
				absent = true // a term absent from the room: no match there
				break
			}
			if !ts.cut && (driver < 0 || len(ts.list) < len(scans[driver].list)) {
				driver = i
			}
		}
		if absent {
			continue
		}
		exact := driver >= 0
		if !exact {
			// Every term's scan was cut: the events above the highest
			// cut are complete, and only those are looked at.
			for i := range scans {
				frontier = max(frontier, scans[i].last)
			}
			driver = 0
		}
		if err := s.matchRoom(tx, q, ri, roomID, scans, driver, exact, &cands); err != nil {
			return nil, 0, err
		}
	}
	return cands, frontier, nil
}

// scanTerm reads up to perScan of term's postings in roomID, newest first
// (below the cursor when ordering by recency), keeping those of the
// query's fields.
func (s *Search) scanTerm(tx *kv.Txn, q Query, term, roomID string, perScan int, ss *snapshots) (termScan, error) {
	ts := termScan{list: make([]termPosting, 0, min(perScan, 1024))}
	prefix := postingPrefix(term, roomID)
	scan := kv.Scan{Prefix: prefix, Reverse: true}
	// A posting's key is the prefix and the position, which kv encodes as a
	// tag and 8 bytes big-endian: read it from there rather than decoding
	// the whole key (kv.LastUint allocates every component, and this runs
	// for every posting). The tag is taken from kv's own encoding.
	zero := postingKey(term, roomID, 0)
	tag, keyLen := zero[len(prefix)], len(zero)
	if !q.ByRank && q.After != nil {
		scan.From = postingKey(term, roomID, q.After.Pos-1)
	}
	read := 0
	err := tx.Each(scan, func(k, v []byte) (bool, error) {
		if read >= perScan {
			ts.cut = true
			return false, nil
		}
		read++
		if len(k) != keyLen || k[len(prefix)] != tag {
			return false, fmt.Errorf("search: malformed posting key %x", k)
		}
		pos := binary.BigEndian.Uint64(k[len(prefix)+1:])
		ts.last = pos
		field, count, stateBefore, err := postingHead(v)
		if err != nil {
			return false, err
		}
		if len(q.Fields) > 0 && !slices.Contains(q.Fields, field) {
			return true, nil
		}
		ts.list = append(ts.list, termPosting{pos: pos, count: count, state: ss.number(stateBefore)})
		return true, nil
	})
	return ts, err
}

// matchRoom adds to cands the driver's events that have every other term:
// in that term's scan, or, when exact and past where a cut scan stopped,
// by a point read (at most one per driver posting and term).
func (s *Search) matchRoom(tx *kv.Txn, q Query, ri int, roomID string, scans []termScan, driver int, exact bool, cands *[]candidate) error {
	for _, dp := range scans[driver].list {
		pos, rank, ok := dp.pos, dp.count, true
		for i := range scans {
			if i == driver || !ok {
				continue
			}
			if tp, found := scans[i].lookup(pos); found {
				rank += tp.count
				continue
			}
			if !exact || !scans[i].cut || pos >= scans[i].last {
				ok = false // read by that term's scan and absent, or past the frontier
				continue
			}
			v, err := tx.Get(postingKey(q.Terms[i], roomID, pos))
			if errors.Is(err, kv.ErrNotFound) {
				ok = false
				continue
			}
			if err != nil {
				return err
			}
			field, count, _, err := postingHead(v)
			if err != nil {
				return err
			}
			if len(q.Fields) > 0 && !slices.Contains(q.Fields, field) {
				ok = false
				continue
			}
			rank += count
		}
		if ok {
			*cands = append(*cands, candidate{room: ri, pos: pos, rank: rank, state: dp.state})
		}
	}
	return nil
}

// afterCursor reports whether c comes after the cursor in q's order.
func (q Query) afterCursor(c candidate) bool {
	if q.After == nil {
		return true
	}
	if q.ByRank && c.rank != q.After.Rank {
		return c.rank < q.After.Rank
	}
	return c.pos < q.After.Pos
}

// collect checks the complete candidates' visibility, counts them, and
// loads the page's results in order.
func (s *Search) collect(ctx context.Context, tx *kv.Txn, q Query, rooms []string, ss *snapshots, cands []candidate, frontier uint64, res *Result) error {
	slices.SortFunc(cands, func(a, b candidate) int {
		if q.ByRank && a.rank != b.rank {
			return cmp.Compare(b.rank, a.rank)
		}
		return cmp.Compare(b.pos, a.pos)
	})
	vis := &visibility{s: s, tx: tx, userID: q.UserID, rooms: rooms, ss: ss, cache: make([]int8, len(ss.ids))}
	loaded := 0
	var last *candidate
	full, more := false, false
	seenAtLast := 0 // res.Count once last was counted
	for i := range cands {
		c := cands[i]
		if c.pos <= frontier {
			continue // the scan may have missed events as recent as this
		}
		if i%256 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		ok, err := vis.visible(c)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		res.Count++
		if !q.afterCursor(c) {
			continue
		}
		if full {
			more = true
			continue
		}
		if loaded >= MaxEventsLoaded {
			full, more = true, true // the next page goes on from the last one looked at
			continue
		}
		loaded++
		last = &cands[i]
		seenAtLast = res.Count
		ev, _, err := vis.load(c)
		if errors.Is(err, core.ErrNotFound) || errors.Is(err, kv.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		if ev.RedactedBy != "" || (q.Keep != nil && !q.Keep(ev)) {
			continue
		}
		res.Hits = append(res.Hits, Hit{Event: ev, Rank: c.rank})
		if len(res.Hits) == q.Limit {
			full = true
		}
	}
	carried := 0 // results before the cursor that this scan did not reach
	if !q.ByRank && q.After != nil {
		carried = q.After.Seen
	}
	switch {
	case more && last != nil:
		res.Next = &Cursor{Rank: last.rank, Pos: last.pos, Seen: carried + seenAtLast}
	case frontier > 0 && !q.ByRank:
		// Everything above the frontier is done; carry on below it.
		res.Next = &Cursor{Pos: frontier + 1, Seen: carried + res.Count}
	}
	if !q.ByRank {
		res.Count += carried
	}
	return nil
}

// visibility decides whether the user may see candidates. That is decided
// by the state before an event (core.Node.Visible: history visibility and
// their membership then), except that with "shared" history a user who left
// sees what came before their leave and not after; but the leave is itself a
// state change, so no snapshot precedes events on both sides of it. The
// answer is therefore cached per snapshot: most messages of a room share one.
type visibility struct {
	s      *Search
	tx     *kv.Txn
	userID string
	rooms  []string
	ss     *snapshots
	cache  []int8 // per snapshot: 0 unknown, 1 visible, -1 not
}

// load reads a candidate's event from the room's timeline.
func (v *visibility) load(c candidate) (*core.Event, *core.EventRecord, error) {
	entry, err := v.tx.Get(core.RoomStreamKey(v.rooms[c.room], c.pos))
	if err != nil {
		return nil, nil, err
	}
	eventID, _, err := core.DecodeTimelineEntry(entry)
	if err != nil {
		return nil, nil, err
	}
	return v.s.LoadEvent(v.tx, eventID)
}

// visible reports whether the user may see c (false for an event gone).
func (v *visibility) visible(c candidate) (bool, error) {
	cacheable := v.ss.ids[c.state] != "" // an event indexed with no snapshot is checked alone
	if cacheable && v.cache[c.state] != 0 {
		return v.cache[c.state] > 0, nil
	}
	ev, rec, err := v.load(c)
	if errors.Is(err, core.ErrNotFound) || errors.Is(err, kv.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	ok, err := v.s.Visible(v.tx, v.userID, ev, rec)
	if err != nil {
		return false, err
	}
	if cacheable {
		v.cache[c.state] = -1
		if ok {
			v.cache[c.state] = 1
		}
	}
	return ok, nil
}
