package syncapi_test

import (
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/edgenode/edgenode/node"
)

// sendSticky sends a message through the client API with a sticky duration
// and returns its ID.
func (e *env) sendSticky(s node.Session, roomID, body string, durationMS int) string {
	e.t.Helper()
	path := fmt.Sprintf("%s/rooms/%s/send/m.room.message/st%d?org.matrix.msc4354.sticky_duration_ms=%d",
		csV3, url.PathEscape(roomID), time.Now().UnixNano(), durationMS)
	res := e.call(s, "PUT", path, map[string]string{"msgtype": "m.text", "body": body})
	return res.String("event_id")
}

// jsonHas says whether the timeline event id in a raw /sync response has
// the top-level key.
func jsonHas(t *testing.T, raw []byte, id, key string) bool {
	t.Helper()
	var b struct {
		Rooms struct {
			Join map[string]struct {
				Timeline struct {
					Events []map[string]json.RawMessage `json:"events"`
				} `json:"timeline"`
			} `json:"join"`
		} `json:"rooms"`
	}
	if err := json.Unmarshal(raw, &b); err != nil {
		t.Fatal(err)
	}
	for _, r := range b.Rooms.Join {
		for _, ev := range r.Timeline.Events {
			if string(ev["event_id"]) == strconv.Quote(id) {
				_, ok := ev[key]
				return ok
			}
		}
	}
	return false
}

// stickyIDs lists the event IDs of a room's sticky section.
func stickyIDs(r syncRoom) []string { return ids(r.Sticky.Events) }

// stickyRoom is a room made by alice with bob joined and history visible
// only to joined members (so a sticky event's delivery cannot come from
// visibility).
func stickyRoom(e *env) (alice, bob node.Session, room string) {
	alice, bob = e.user("alice"), e.user("bob")
	room = e.room(alice, "public_chat", historyVisibility("joined"))
	e.join(bob, room)
	return alice, bob, room
}

// TestStickyNotDuplicatedWithTimeline: a sticky event in the timeline is
// not repeated in the sticky section, and it carries msc4354_sticky.
func TestStickyNotDuplicatedWithTimeline(t *testing.T) {
	e := newEnv(t)
	alice, bob, room := stickyRoom(e)
	id := e.sendSticky(alice, room, "hi", 300000)
	b := e.sync(bob, nil)
	r := b.Rooms.Join[room]
	if !slices.Contains(ids(r.Timeline.Events), id) {
		t.Fatalf("sticky event not in the timeline: %s", b.Raw)
	}
	if r.Sticky.Present {
		t.Fatalf("sticky event repeated in the sticky section: %s", b.Raw)
	}
	if !jsonHas(t, b.Raw, id, "msc4354_sticky") {
		t.Errorf("timeline event has no msc4354_sticky: %s", b.Raw)
	}
	for _, ev := range r.Timeline.Events {
		ttl, _ := ev.Unsigned["msc4354_sticky_duration_ttl_ms"].(float64)
		switch {
		case ev.EventID == id && (ttl <= 0 || ttl > 300000):
			t.Errorf("sticky timeline event: msc4354_sticky_duration_ttl_ms = %v", ev.Unsigned)
		case ev.EventID != id && ev.Unsigned["msc4354_sticky_duration_ttl_ms"] != nil:
			t.Errorf("plain timeline event %s has a sticky TTL", ev.EventID)
		}
	}
	// An incremental sync from there has nothing.
	if got := e.since(bob, b.NextBatch).Rooms.Join[room]; got.Sticky.Present {
		t.Errorf("redelivered: %v", stickyIDs(got))
	}
}

// TestStickyBeyondTimelineLimit: with ten messages after the sticky event
// and a timeline limit of 2, the sticky event comes in the sticky section
// with its remaining lifetime; the next sync does not repeat it.
func TestStickyBeyondTimelineLimit(t *testing.T) {
	e := newEnv(t)
	alice, bob, room := stickyRoom(e)
	id := e.sendSticky(alice, room, "sticky", 300000)
	for i := range 10 {
		e.say(alice, room, "m"+strconv.Itoa(i))
	}
	f := jsonString(t, map[string]any{"room": map[string]any{"timeline": map[string]any{"limit": 2}}})
	b := e.sync(bob, vals("filter", f))
	r := b.Rooms.Join[room]
	if got := stickyIDs(r); !slices.Equal(got, []string{id}) {
		t.Fatalf("sticky section %v, want [%s]: %s", got, id, b.Raw)
	}
	if slices.Contains(ids(r.Timeline.Events), id) {
		t.Fatalf("sticky event in the limited timeline too")
	}
	ttl, _ := r.Sticky.Events[0].Unsigned["msc4354_sticky_duration_ttl_ms"].(float64)
	if ttl <= 0 || ttl > 300000 {
		t.Errorf("msc4354_sticky_duration_ttl_ms = %v, want in (0, 300000]", r.Sticky.Events[0].Unsigned)
	}
	e.say(alice, room, "later")
	if got := e.since(bob, b.NextBatch).Rooms.Join[room]; got.Sticky.Present {
		t.Errorf("redelivered on the incremental sync: %v", stickyIDs(got))
	}
}

// TestStickyTimelineFilterFirst: a sticky event the timeline filter leaves
// out comes in the sticky section (the filter applies before de-duplication,
// and not to the section).
func TestStickyTimelineFilterFirst(t *testing.T) {
	e := newEnv(t)
	alice, bob, room := stickyRoom(e)
	id := e.sendSticky(alice, room, "hidden from the timeline", 300000)
	f := jsonString(t, map[string]any{"room": map[string]any{"timeline": map[string]any{"not_types": []string{"m.room.message"}}}})
	b := e.sync(bob, vals("filter", f))
	if got := stickyIDs(b.Rooms.Join[room]); !slices.Equal(got, []string{id}) {
		t.Fatalf("sticky section %v, want [%s]: %s", got, id, b.Raw)
	}
}

// TestStickyIncremental: a sticky event sent after a sync comes once on
// the next incremental sync (in the timeline), and a token from before
// sticky events existed (no sticky part) does not bring back old ones.
func TestStickyIncremental(t *testing.T) {
	e := newEnv(t)
	alice, bob, room := stickyRoom(e)
	old := e.sendSticky(alice, room, "old", 300000)
	b := e.sync(bob, nil)
	id := e.sendSticky(alice, room, "new", 300000)
	b2 := e.since(bob, b.NextBatch)
	r := b2.Rooms.Join[room]
	if !slices.Contains(ids(r.Timeline.Events), id) || r.Sticky.Present {
		t.Fatalf("new sticky event: timeline %v sticky %v", ids(r.Timeline.Events), stickyIDs(r))
	}
	if b3 := e.since(bob, b2.NextBatch); b3.Rooms.Join[room].Sticky.Present {
		t.Errorf("redelivered: %s", b3.Raw)
	}
	// e.now() has no sticky part: the cursor is the room position.
	if r := e.since(bob, e.now()).Rooms.Join[room]; slices.Contains(stickyIDs(r), old) {
		t.Errorf("a token without a sticky part brought back %s", old)
	}
}

// TestStickyNewJoinerBacklog: a user who joins gets every unexpired sticky
// event sent before the join, though history visibility ("joined") hides
// those events from their timeline; the events come once.
func TestStickyNewJoinerBacklog(t *testing.T) {
	e := newEnv(t)
	alice := e.user("alice")
	carol := e.user("carol")
	room := e.room(alice, "public_chat", historyVisibility("joined"))
	var want []string
	for i := range 3 {
		want = append(want, e.sendSticky(alice, room, "s"+strconv.Itoa(i), 300000))
	}
	e.say(alice, room, "plain")
	b := e.sync(carol, nil)
	e.join(carol, room)
	b2 := e.since(carol, b.NextBatch)
	r := b2.Rooms.Join[room]
	if got := stickyIDs(r); !slices.Equal(got, want) {
		t.Fatalf("joiner's sticky section %v, want %v: %s", got, want, b2.Raw)
	}
	if b3 := e.since(carol, b2.NextBatch); b3.Rooms.Join[room].Sticky.Present {
		t.Errorf("backlog redelivered: %s", b3.Raw)
	}
	// A fresh client of the joiner gets them too, once.
	fresh := e.sync(carol, nil)
	if got := stickyIDs(fresh.Rooms.Join[room]); !slices.Equal(got, want) {
		t.Errorf("initial sync after joining: %v, want %v", got, want)
	}
}

// TestStickyBacklogPaged: more sticky events than one response carries
// come over several syncs, oldest first, each once, and each of those
// syncs returns at once though it has a since token and a timeout.
func TestStickyBacklogPaged(t *testing.T) {
	e := newEnv(t)
	alice, carol := e.user("alice"), e.user("carol")
	room := e.room(alice, "public_chat")
	const total = 230
	var want []string
	for i := range total {
		want = append(want, e.sendSticky(alice, room, "s"+strconv.Itoa(i), 300000))
	}
	e.join(carol, room)
	var got []string
	b := e.sync(carol, nil)
	for round := 0; ; round++ {
		if round > 10 {
			t.Fatalf("backlog not delivered after %d syncs: %d of %d", round, len(got), total)
		}
		got = append(got, stickyIDs(b.Rooms.Join[room])...)
		if len(got) >= total {
			break
		}
		start := time.Now()
		b = e.sync(carol, vals("since", b.NextBatch, "timeout", "30000"))
		if d := time.Since(start); d > 20*time.Second {
			t.Fatalf("a sync with a sticky backlog waited %v", d)
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("delivered %d events, want %d in sending order", len(got), len(want))
	}
	if b := e.since(carol, b.NextBatch); b.Rooms.Join[room].Sticky.Present {
		t.Errorf("more after the backlog: %v", stickyIDs(b.Rooms.Join[room]))
	}
}

// TestStickyExpiredNotDelivered: an expired sticky event (duration 0, or
// a short one that has run out) is not in the sticky section.
func TestStickyExpiredNotDelivered(t *testing.T) {
	e := newEnv(t)
	alice, bob, room := stickyRoom(e)
	zero := e.sendSticky(alice, room, "zero", 0)
	short := e.sendSticky(alice, room, "short", 1)
	live := e.sendSticky(alice, room, "live", 300000)
	for i := range 5 {
		e.say(alice, room, "m"+strconv.Itoa(i))
	}
	// Let the 1 ms run out: a wait on the clock, not on the node.
	for deadline := time.Now().Add(20 * time.Millisecond); time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	f := jsonString(t, map[string]any{"room": map[string]any{"timeline": map[string]any{"limit": 1}}})
	got := stickyIDs(e.sync(bob, vals("filter", f)).Rooms.Join[room])
	if !slices.Equal(got, []string{live}) {
		t.Errorf("sticky section %v, want only %s (not %s, %s)", got, live, zero, short)
	}
}

// TestStickyIgnoredUser: an ignored user's sticky events are not delivered.
func TestStickyIgnoredUser(t *testing.T) {
	e := newEnv(t)
	alice, bob, room := stickyRoom(e)
	e.putAccountData(bob, "", "m.ignored_user_list", map[string]any{"ignored_users": map[string]any{alice.UserID: map[string]any{}}})
	e.sendSticky(alice, room, "ignored", 300000)
	f := jsonString(t, map[string]any{"room": map[string]any{"timeline": map[string]any{"limit": 1}}})
	if r := e.sync(bob, vals("filter", f)).Rooms.Join[room]; r.Sticky.Present {
		t.Errorf("ignored user's sticky event delivered: %v", stickyIDs(r))
	}
}

// TestStickySenderLeft: once the sender has left, their unexpired sticky
// events are no longer delivered (they would soft-fail against the
// current state).
func TestStickySenderLeft(t *testing.T) {
	e := newEnv(t)
	alice, bob, room := stickyRoom(e)
	e.sendSticky(bob, room, "bob's", 300000)
	e.membership(bob, room, bob.UserID, "leave")
	carol := e.user("carol")
	e.join(carol, room)
	f := jsonString(t, map[string]any{"room": map[string]any{"timeline": map[string]any{"limit": 1}}})
	if r := e.sync(carol, vals("filter", f)).Rooms.Join[room]; r.Sticky.Present {
		t.Errorf("sticky event of a user who left delivered: %v", stickyIDs(r))
	}
	_ = alice
}

// TestStickyRejoinOnce: a client that slept through a join, a leave and a
// second join gets each unexpired sticky event once.
func TestStickyRejoinOnce(t *testing.T) {
	e := newEnv(t)
	alice, carol := e.user("alice"), e.user("carol")
	room := e.room(alice, "public_chat", historyVisibility("joined"))
	b := e.sync(carol, nil)
	first := e.sendSticky(alice, room, "before the first join", 300000)
	e.join(carol, room)
	second := e.sendSticky(alice, room, "while joined", 300000)
	e.membership(carol, room, carol.UserID, "leave")
	third := e.sendSticky(alice, room, "while away", 300000)
	e.join(carol, room)
	f := jsonString(t, map[string]any{"room": map[string]any{"timeline": map[string]any{"limit": 1}}})
	got := stickyIDs(e.sync(carol, vals("filter", f, "since", b.NextBatch, "timeout", "0")).Rooms.Join[room])
	slices.Sort(got)
	want := []string{first, second, third}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("sticky section %v, want each of %v once", got, want)
	}
}
