package syncapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/edgenode/edgenode/node"
	"github.com/edgenode/edgenode/node/core"
)

// Relations, threads and bundled aggregations, as clients see them over
// HTTP: GET /relations and /threads, and unsigned["m.relations"] in /sync,
// /messages, /context and /event.

func relationsPath(room, eventID string, rest ...string) string {
	p := "/_matrix/client/v1/rooms/" + url.PathEscape(room) + "/relations/" + url.PathEscape(eventID)
	for _, r := range rest {
		p += "/" + url.PathEscape(r)
	}
	return p
}

func threadsPath(room string) string {
	return "/_matrix/client/v1/rooms/" + url.PathEscape(room) + "/threads"
}

// relBody is a decoded /relations or /threads answer.
type relBody struct {
	Chunk          []event `json:"chunk"`
	NextBatch      *string `json:"next_batch"`
	PrevBatch      *string `json:"prev_batch"`
	RecursionDepth *int    `json:"recursion_depth"`
}

func (e *env) relGet(s node.Session, path string, q url.Values) relBody {
	e.t.Helper()
	res := e.get(s.AccessToken, path, q)
	if res.Status != http.StatusOK {
		e.t.Fatalf("GET %s %v: %d %s", path, q, res.Status, res.Raw)
	}
	var b relBody
	if err := json.Unmarshal(res.Raw, &b); err != nil {
		e.t.Fatalf("decode: %v: %s", err, res.Raw)
	}
	if b.Chunk == nil {
		e.t.Fatalf("chunk missing or null: %s", res.Raw)
	}
	return b
}

// relate sends an event of evType relating to parent with relType.
func (e *env) relate(s node.Session, roomID, evType, relType, parent string, extra map[string]any) string {
	e.t.Helper()
	content := map[string]any{"m.relates_to": map[string]any{"rel_type": relType, "event_id": parent}}
	for k, v := range extra {
		if k == "key" { // an annotation's key goes inside m.relates_to
			content["m.relates_to"].(map[string]any)["key"] = v
			continue
		}
		content[k] = v
	}
	return e.send(s, roomID, evType, content)
}

func (e *env) react(s node.Session, roomID, parent, key string) string {
	e.t.Helper()
	return e.relate(s, roomID, "m.reaction", "m.annotation", parent, map[string]any{"key": key})
}

func (e *env) threadReply(s node.Session, roomID, root, body string) string {
	e.t.Helper()
	return e.relate(s, roomID, "m.room.message", "m.thread", root, map[string]any{"msgtype": "m.text", "body": body})
}

func (e *env) edit(s node.Session, roomID, parent, body string) string {
	e.t.Helper()
	return e.relate(s, roomID, "m.room.message", "m.replace", parent, map[string]any{
		"msgtype": "m.text", "body": "* " + body, "m.new_content": map[string]any{"msgtype": "m.text", "body": body},
	})
}

func (e *env) redact(s node.Session, roomID, eventID string) {
	e.t.Helper()
	if _, err := e.n.Redact(context.Background(), core.RedactRequest{Sender: s.UserID, DeviceID: s.DeviceID, RoomID: roomID, EventID: eventID}); err != nil {
		e.t.Fatalf("redact %s: %v", eventID, err)
	}
}

func TestRelations(t *testing.T) {
	e := newEnv(t)
	alice, bob, carol := e.user("alice"), e.user("bob"), e.user("carol")
	room := e.room(alice, "public_chat")
	e.join(bob, room)
	other := e.room(alice, "public_chat")
	root := e.say(alice, room, "root")
	r1 := e.react(bob, room, root, "👍")
	th := e.threadReply(bob, room, root, "in thread")
	r2 := e.react(alice, room, root, "🎉")
	ed := e.edit(alice, room, root, "root, edited")
	ref := e.relate(bob, room, "m.room.message", "m.reference", root, map[string]any{"msgtype": "m.text", "body": "see"})
	deep := e.react(alice, room, th, "👀") // a relation of a relation
	e.say(alice, room, "unrelated")
	// A relation from another room is no relation of root's (the spec:
	// related events are in the same room): not listed, not aggregated.
	e.react(alice, other, root, "🚫")
	e.threadReply(alice, other, root, "from elsewhere")

	newestFirst := []string{ref, ed, r2, th, r1}
	tests := []struct {
		name  string
		rest  []string
		q     url.Values
		want  []string
		depth *int
	}{
		{"all, newest first", nil, nil, newestFirst, nil},
		{"forwards", nil, vals("dir", "f"), reversed(newestFirst), nil},
		{"by rel_type", []string{"m.annotation"}, nil, []string{r2, r1}, nil},
		{"by rel_type and event type", []string{"m.annotation", "m.reaction"}, nil, []string{r2, r1}, nil},
		{"by rel_type, other event type", []string{"m.annotation", "m.room.message"}, nil, []string{}, nil},
		{"thread", []string{"m.thread"}, nil, []string{th}, nil},
		{"unknown rel_type", []string{"org.example.none"}, nil, []string{}, nil},
		{"recurse", nil, vals("recurse", "true"), append([]string{deep}, newestFirst...), ptr(3)},
		{"recurse with rel_type", []string{"m.annotation"}, vals("recurse", "true"), []string{deep, r2, r1}, ptr(3)},
		{"recurse false", nil, vals("recurse", "false"), newestFirst, ptr(1)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := e.forT(t).relGet(bob, relationsPath(room, root, tc.rest...), tc.q)
			if got := ids(b.Chunk); !slices.Equal(got, tc.want) {
				t.Fatalf("chunk %v, want %v", got, tc.want)
			}
			if b.NextBatch != nil {
				t.Fatalf("next_batch %q on the only page", *b.NextBatch)
			}
			if (b.RecursionDepth == nil) != (tc.depth == nil) || (b.RecursionDepth != nil && *b.RecursionDepth != *tc.depth) {
				t.Fatalf("recursion_depth %v, want %v", b.RecursionDepth, tc.depth)
			}
			for _, ev := range b.Chunk {
				if ev.RoomID != room {
					t.Fatalf("event without its room_id: %+v", ev)
				}
			}
		})
	}

	errs := []struct {
		name    string
		who     node.Session
		path    string
		q       url.Values
		status  int
		errcode string
	}{
		{"unknown event", bob, relationsPath(room, "$nope"), nil, 404, "M_NOT_FOUND"},
		{"event of another room", bob, relationsPath(other, root), nil, 404, "M_NOT_FOUND"},
		{"user not in the room", carol, relationsPath(room, root), nil, 404, "M_NOT_FOUND"},
		{"bad dir", bob, relationsPath(room, root), vals("dir", "up"), 400, "M_INVALID_PARAM"},
		{"bad from", bob, relationsPath(room, root), vals("from", "nonsense"), 400, "M_INVALID_PARAM"},
		{"bad to", bob, relationsPath(room, root), vals("to", "s1_x"), 400, "M_INVALID_PARAM"},
		{"bad limit", bob, relationsPath(room, root), vals("limit", "-1"), 400, "M_INVALID_PARAM"},
		{"bad recurse", bob, relationsPath(room, root), vals("recurse", "yes"), 400, "M_INVALID_PARAM"},
		{"no token", node.Session{}, relationsPath(room, root), nil, 401, "M_MISSING_TOKEN"},
	}
	for _, tc := range errs {
		t.Run(tc.name, func(t *testing.T) {
			res := e.get(tc.who.AccessToken, tc.path, tc.q)
			if res.Status != tc.status || res.Errcode() != tc.errcode {
				t.Fatalf("%d %s, want %d %s", res.Status, res.Raw, tc.status, tc.errcode)
			}
		})
	}
}

// TestRelationsPagination walks a parent's relations in pages both ways,
// with to bounding the walk, and checks nothing repeats or goes missing.
func TestRelationsPagination(t *testing.T) {
	e := newEnv(t)
	alice := e.user("alice")
	room := e.room(alice, "private_chat")
	root := e.say(alice, room, "root")
	var rels []string
	for i := range 7 {
		rels = append(rels, e.react(alice, room, root, string(rune('a'+i))))
	}
	for _, dir := range []string{"b", "f"} {
		t.Run(dir, func(t *testing.T) {
			want := slices.Clone(rels)
			if dir == "b" {
				want = reversed(rels)
			}
			var got []string
			q := vals("limit", "3", "dir", dir)
			for page := 0; ; page++ {
				if page > 10 {
					t.Fatal("pagination does not end")
				}
				b := e.forT(t).relGet(alice, relationsPath(room, root), q)
				if page > 0 && (b.PrevBatch == nil || *b.PrevBatch != q.Get("from")) {
					t.Fatalf("prev_batch %v, want the from given (%s)", b.PrevBatch, q.Get("from"))
				}
				got = append(got, ids(b.Chunk)...)
				if b.NextBatch == nil {
					break
				}
				q.Set("from", *b.NextBatch)
			}
			if !slices.Equal(got, want) {
				t.Fatalf("walked %v, want %v", got, want)
			}
		})
	}
	// The first page's next_batch as to, from the start: the first page again.
	first := e.relGet(alice, relationsPath(room, root), vals("limit", "3"))
	second := e.relGet(alice, relationsPath(room, root), vals("limit", "3", "from", *first.NextBatch))
	b := e.relGet(alice, relationsPath(room, root), vals("to", *second.NextBatch))
	if got, want := ids(b.Chunk), reversed(rels)[:6]; !slices.Equal(got, want) {
		t.Fatalf("to: %v, want %v", got, want)
	}
	// A /messages token works as from: everything up to it.
	msgs := e.messages(alice, room, vals("dir", "b", "limit", "1"))
	if b := e.relGet(alice, relationsPath(room, root), vals("from", msgs.Start)); len(b.Chunk) != len(rels) {
		t.Fatalf("from a /messages token: %v", ids(b.Chunk))
	}
}

// TestRelationsHistoryVisibility: relations are served only as far as the
// user may see them, and a parent they may not see is 404.
func TestRelationsHistoryVisibility(t *testing.T) {
	e := newEnv(t)
	alice, bob := e.user("alice"), e.user("bob")
	room := e.room(alice, "public_chat", historyVisibility("joined"))
	root := e.say(alice, room, "before bob")
	before := e.react(alice, room, root, "1")
	e.join(bob, room)
	visibleRoot := e.say(alice, room, "after bob")
	after := e.react(alice, room, visibleRoot, "2")

	if res := e.get(bob.AccessToken, relationsPath(room, root), nil); res.Status != 404 || res.Errcode() != "M_NOT_FOUND" {
		t.Fatalf("root bob may not see: %d %s", res.Status, res.Raw)
	}
	if b := e.relGet(bob, relationsPath(room, visibleRoot), nil); !slices.Equal(ids(b.Chunk), []string{after}) {
		t.Fatalf("relations of a visible root: %v", ids(b.Chunk))
	}
	if b := e.relGet(alice, relationsPath(room, root), nil); !slices.Equal(ids(b.Chunk), []string{before}) {
		t.Fatalf("alice: %v", ids(b.Chunk))
	}
}

// threadSummary is a decoded m.thread bundled aggregation.
type threadSummary struct {
	Count         int   `json:"count"`
	LatestEvent   event `json:"latest_event"`
	Participated  bool  `json:"current_user_participated"`
	PresentInJSON bool  `json:"-"`
}

// relationsOf decodes an event's unsigned["m.relations"].
func relationsOf(t testing.TB, ev event) (thread *threadSummary, edit *event, refs []string) {
	t.Helper()
	raw, err := json.Marshal(ev.Unsigned["m.relations"])
	if err != nil {
		t.Fatal(err)
	}
	var rel struct {
		Thread  *threadSummary `json:"m.thread"`
		Replace *event         `json:"m.replace"`
		Ref     *struct {
			Chunk []struct {
				EventID string `json:"event_id"`
			} `json:"chunk"`
		} `json:"m.reference"`
	}
	if err := json.Unmarshal(raw, &rel); err != nil {
		t.Fatalf("m.relations %s: %v", raw, err)
	}
	if rel.Ref != nil {
		for _, c := range rel.Ref.Chunk {
			refs = append(refs, c.EventID)
		}
	}
	return rel.Thread, rel.Replace, refs
}

func findEvent(t testing.TB, evs []event, id string) event {
	t.Helper()
	for _, ev := range evs {
		if ev.EventID == id {
			return ev
		}
	}
	t.Fatalf("event %s not among %v", id, ids(evs))
	return event{}
}

// TestBundledAggregations: the same aggregations wherever the parent is
// served: /sync, /messages, /context, /event and /relations' own chunk.
func TestBundledAggregations(t *testing.T) {
	e := newEnv(t)
	alice, bob, carol := e.user("alice"), e.user("bob"), e.user("carol")
	room := e.room(alice, "public_chat")
	e.join(bob, room)
	e.join(carol, room)
	root := e.say(alice, room, "root")
	e.edit(alice, room, root, "first edit")
	latestEdit := e.edit(alice, room, root, "second edit")
	e.edit(bob, room, root, "not bob's to edit")                                                              // another sender: invalid
	e.relate(alice, room, "m.reaction", "m.replace", root, map[string]any{"m.new_content": map[string]any{}}) // another type: invalid
	e.threadReply(bob, room, root, "reply 1")
	latestReply := e.threadReply(bob, room, root, "reply 2")
	replyEdit := e.edit(bob, room, latestReply, "reply 2, edited")
	ref := e.relate(carol, room, "m.room.message", "m.reference", root, map[string]any{"msgtype": "m.text", "body": "see"})
	plain := e.say(alice, room, "nothing relates to me")

	check := func(t *testing.T, where string, ev event, viewer node.Session) {
		t.Helper()
		thread, edit, refs := relationsOf(t, ev)
		if edit == nil || edit.EventID != latestEdit {
			t.Fatalf("%s: m.replace %+v, want the event %s", where, edit, latestEdit)
		}
		if thread == nil || thread.Count != 2 || thread.LatestEvent.EventID != latestReply {
			t.Fatalf("%s: m.thread %+v, want count 2, latest %s", where, thread, latestReply)
		}
		if want := viewer.UserID != carol.UserID; thread.Participated != want {
			t.Fatalf("%s: current_user_participated %v for %s", where, thread.Participated, viewer.UserID)
		}
		if lt, le, _ := relationsOf(t, thread.LatestEvent); lt != nil || le == nil || le.EventID != replyEdit {
			t.Fatalf("%s: the latest event's own edit %+v", where, le)
		}
		if !slices.Equal(refs, []string{ref}) {
			t.Fatalf("%s: m.reference %v", where, refs)
		}
	}
	for _, viewer := range []node.Session{alice, bob, carol} {
		t.Run(viewer.UserID, func(t *testing.T) {
			e := e.forT(t)
			s := e.sync(viewer, vals("filter", `{"room":{"timeline":{"limit":50}}}`))
			check(t, "sync", findEvent(t, s.Rooms.Join[room].Timeline.Events, root), viewer)
			ss := e.ss(viewer, map[string]any{"lists": map[string]any{"all": ssList(0, 10, 50)}})
			check(t, "sliding sync", findEvent(t, ss.Rooms[room].Timeline, root), viewer)
			m := e.messages(viewer, room, vals("dir", "b", "limit", "50"))
			check(t, "messages", findEvent(t, m.Chunk, root), viewer)
			res := e.get(viewer.AccessToken, contextPath(room, root), vals("limit", "0"))
			var cb contextBody
			if err := json.Unmarshal(res.Raw, &cb); err != nil || res.Status != 200 {
				t.Fatalf("context: %d %s", res.Status, res.Raw)
			}
			check(t, "context", cb.Event, viewer)
			res = e.get(viewer.AccessToken, "/_matrix/client/v3/rooms/"+url.PathEscape(room)+"/event/"+url.PathEscape(root), nil)
			var ev event
			if err := json.Unmarshal(res.Raw, &ev); err != nil || res.Status != 200 {
				t.Fatalf("event: %d %s", res.Status, res.Raw)
			}
			check(t, "event", ev, viewer)
			th := e.relGet(viewer, threadsPath(room), nil)
			if len(th.Chunk) != 1 {
				t.Fatalf("threads: %v", ids(th.Chunk))
			}
			check(t, "threads", th.Chunk[0], viewer)
			// Within /relations, a thread reply carries its own edit.
			rb := e.relGet(viewer, relationsPath(room, root, "m.thread"), nil)
			if _, le, _ := relationsOf(t, findEvent(t, rb.Chunk, latestReply)); le == nil || le.EventID != replyEdit {
				t.Fatalf("relations: the reply's edit %+v", le)
			}
			// An event nothing relates to has no m.relations.
			if p := findEvent(t, m.Chunk, plain); p.Unsigned["m.relations"] != nil {
				t.Fatalf("plain event has m.relations: %v", p.Unsigned)
			}
		})
	}
}

// TestRedactedRelationsLeaveAggregations: a redacted edit, thread reply or
// reference no longer counts; the thread leaves /threads with its last
// reply.
func TestRedactedRelationsLeaveAggregations(t *testing.T) {
	e := newEnv(t)
	alice, bob := e.user("alice"), e.user("bob")
	room := e.room(alice, "public_chat")
	e.join(bob, room)
	root := e.say(alice, room, "root")
	firstEdit := e.edit(alice, room, root, "one")
	secondEdit := e.edit(alice, room, root, "two")
	reply1 := e.threadReply(bob, room, root, "reply 1")
	reply2 := e.threadReply(alice, room, root, "reply 2")
	ref := e.relate(bob, room, "m.room.message", "m.reference", root, map[string]any{"msgtype": "m.text", "body": "see"})

	rootAsBob := func() event {
		res := e.get(bob.AccessToken, "/_matrix/client/v3/rooms/"+url.PathEscape(room)+"/event/"+url.PathEscape(root), nil)
		var ev event
		if err := json.Unmarshal(res.Raw, &ev); err != nil || res.Status != 200 {
			t.Fatalf("event: %d %s", res.Status, res.Raw)
		}
		return ev
	}

	e.redact(alice, room, secondEdit)
	e.redact(alice, room, reply2) // alice's own reply: bob is the only participant left
	e.redact(bob, room, ref)
	thread, edit, refs := relationsOf(t, rootAsBob())
	if edit == nil || edit.EventID != firstEdit {
		t.Fatalf("m.replace after redacting the latest edit: %+v, want %s", edit, firstEdit)
	}
	if thread == nil || thread.Count != 1 || thread.LatestEvent.EventID != reply1 || !thread.Participated {
		t.Fatalf("m.thread after redacting the latest reply: %+v", thread)
	}
	if refs != nil {
		t.Fatalf("m.reference after redacting it: %v", refs)
	}
	if b := e.relGet(bob, relationsPath(room, root), nil); !slices.Equal(ids(b.Chunk), []string{reply1, firstEdit}) {
		t.Fatalf("relations after redactions: %v", ids(b.Chunk))
	}
	if b := e.relGet(alice, threadsPath(room), vals("include", "participated")); !slices.Equal(ids(b.Chunk), []string{root}) {
		t.Fatalf("alice sent the root, so took part: %v", ids(b.Chunk))
	}

	e.redact(alice, room, firstEdit)
	e.redact(bob, room, reply1)
	if u := rootAsBob().Unsigned; u["m.relations"] != nil {
		t.Fatalf("m.relations with every relation redacted: %v", u["m.relations"])
	}
	if b := e.relGet(bob, threadsPath(room), nil); len(b.Chunk) != 0 {
		t.Fatalf("threads with every reply redacted: %v", ids(b.Chunk))
	}

	// Bob replies twice in alice's thread: with one reply redacted he still
	// took part, with both he no longer does (the thread stays, with
	// alice's reply).
	root2 := e.say(alice, room, "root 2")
	first, second := e.threadReply(bob, room, root2, "one"), e.threadReply(bob, room, root2, "two")
	e.threadReply(alice, room, root2, "alice's, which keeps the thread")
	participated := func() []string {
		return ids(e.relGet(bob, threadsPath(room), vals("include", "participated")).Chunk)
	}
	e.redact(bob, room, second)
	if got := participated(); !slices.Equal(got, []string{root2}) {
		t.Fatalf("bob with one reply left: participated in %v", got)
	}
	e.redact(bob, room, first)
	if got := participated(); len(got) != 0 {
		t.Fatalf("bob with no reply left: participated in %v", got)
	}
}

func TestThreads(t *testing.T) {
	e := newEnv(t)
	alice, bob, carol, dave := e.user("alice"), e.user("bob"), e.user("carol"), e.user("dave")
	room := e.room(alice, "public_chat")
	e.join(bob, room)
	e.join(carol, room)
	rootA := e.say(alice, room, "thread A")
	rootB := e.say(bob, room, "thread B")
	rootC := e.say(carol, room, "thread C")
	e.threadReply(bob, room, rootA, "a1")
	e.threadReply(carol, room, rootB, "b1")
	e.threadReply(carol, room, rootC, "c1")
	e.threadReply(bob, room, rootA, "a2") // A is the most recently active
	e.say(alice, room, "no thread")

	tests := []struct {
		name string
		who  node.Session
		q    url.Values
		want []string
	}{
		{"all, latest activity first", alice, nil, []string{rootA, rootC, rootB}},
		{"include all", alice, vals("include", "all"), []string{rootA, rootC, rootB}},
		{"participated: root or reply (bob)", bob, vals("include", "participated"), []string{rootA, rootB}},
		{"participated: root only (alice)", alice, vals("include", "participated"), []string{rootA}},
		{"participated: none", dave, vals("include", "participated"), nil},
	}
	e.join(dave, room)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := e.forT(t).relGet(tc.who, threadsPath(room), tc.q)
			if got := ids(b.Chunk); !slices.Equal(got, tc.want) && len(got)+len(tc.want) > 0 {
				t.Fatalf("threads %v, want %v", got, tc.want)
			}
			for _, ev := range b.Chunk {
				if th, _, _ := relationsOf(t, ev); th == nil || th.Count == 0 {
					t.Fatalf("root %s without m.thread: %v", ev.EventID, ev.Unsigned)
				}
			}
		})
	}
	t.Run("pages", func(t *testing.T) {
		var got []string
		q := vals("limit", "1")
		for page := 0; ; page++ {
			if page > 10 {
				t.Fatal("pagination does not end")
			}
			b := e.forT(t).relGet(alice, threadsPath(room), q)
			got = append(got, ids(b.Chunk)...)
			if b.NextBatch == nil {
				break
			}
			q.Set("from", *b.NextBatch)
		}
		if want := []string{rootA, rootC, rootB}; !slices.Equal(got, want) {
			t.Fatalf("walked %v, want %v", got, want)
		}
	})

	outsider := e.user("eve")
	errs := []struct {
		name    string
		who     node.Session
		room    string
		q       url.Values
		status  int
		errcode string
	}{
		{"bad include", alice, room, vals("include", "mine"), 400, "M_INVALID_PARAM"},
		{"limit 0", alice, room, vals("limit", "0"), 400, "M_INVALID_PARAM"},
		{"limit not a number", alice, room, vals("limit", "many"), 400, "M_INVALID_PARAM"},
		{"bad from", alice, room, vals("from", "garbage"), 400, "M_INVALID_PARAM"},
		{"not in the room", outsider, room, nil, 403, "M_FORBIDDEN"},
		{"unknown room", alice, "!nowhere:example.org", nil, 403, "M_FORBIDDEN"},
	}
	for _, tc := range errs {
		t.Run(tc.name, func(t *testing.T) {
			res := e.get(tc.who.AccessToken, threadsPath(tc.room), tc.q)
			if res.Status != tc.status || res.Errcode() != tc.errcode {
				t.Fatalf("%d %s, want %d %s", res.Status, res.Raw, tc.status, tc.errcode)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

// TestRelationFilters: the event filter's relation fields in /messages
// (rel_types, not_rel_types under both names, related_by_rel_types,
// related_by_senders) and rel_types in /sync's timeline.
func TestRelationFilters(t *testing.T) {
	e := newEnv(t)
	alice, bob := e.user("alice"), e.user("bob")
	room := e.room(alice, "public_chat")
	e.join(bob, room)
	rootA := e.say(alice, room, "A")
	rootB := e.say(alice, room, "B")
	plain := e.say(alice, room, "plain")
	replyA := e.threadReply(bob, room, rootA, "in A")
	replyB := e.threadReply(alice, room, rootB, "in B")
	reaction := e.react(bob, room, rootB, "👍")

	msgs := `"types":["m.room.message","m.reaction"]`
	tests := []struct {
		name   string
		filter string
		want   []string
	}{
		{"rel_types", `{` + msgs + `,"rel_types":["m.thread"]}`, []string{replyA, replyB}},
		{"unstable rel_types", `{` + msgs + `,"org.matrix.msc3874.rel_types":["m.thread"]}`, []string{replyA, replyB}},
		{"not_rel_types", `{` + msgs + `,"not_rel_types":["m.thread"]}`, []string{rootA, rootB, plain, reaction}},
		{"unstable not_rel_types", `{` + msgs + `,"org.matrix.msc3874.not_rel_types":["m.thread","m.annotation"]}`, []string{rootA, rootB, plain}},
		{"related_by_rel_types", `{` + msgs + `,"related_by_rel_types":["m.thread"]}`, []string{rootA, rootB}},
		{"related_by_rel_types annotation", `{` + msgs + `,"related_by_rel_types":["m.annotation"]}`, []string{rootB}},
		{"related_by_senders", `{` + msgs + `,"related_by_senders":["` + bob.UserID + `"]}`, []string{rootA, rootB}},
		{"io.element.relation_types", `{` + msgs + `,"io.element.relation_types":["m.thread"]}`, []string{rootA, rootB}},
		{"io.element.relation_senders", `{` + msgs + `,"io.element.relation_senders":["` + bob.UserID + `"]}`, []string{rootA, rootB}},
		{"related_by both, one relation must match both", `{` + msgs + `,"related_by_rel_types":["m.thread"],"related_by_senders":["` + bob.UserID + `"]}`, []string{rootA}},
		{"empty lists restrict nothing", `{` + msgs + `,"rel_types":[],"related_by_senders":[]}`, []string{rootA, rootB, plain, replyA, replyB, reaction}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := e.forT(t).messages(alice, room, vals("dir", "f", "limit", "100", "filter", tc.filter))
			if got := ids(b.Chunk); !slices.Equal(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
	t.Run("sync timeline rel_types", func(t *testing.T) {
		s := e.forT(t).sync(alice, vals("filter", `{"room":{"timeline":{"limit":50,"rel_types":["m.thread"]}}}`))
		if got, want := ids(s.Rooms.Join[room].Timeline.Events), []string{replyA, replyB}; !slices.Equal(got, want) {
			t.Fatalf("got %v, want %v", got, want)
		}
	})
	t.Run("bad related_by_senders", func(t *testing.T) {
		res := e.get(alice.AccessToken, "/_matrix/client/v3/rooms/"+url.PathEscape(room)+"/messages",
			vals("dir", "b", "filter", `{"related_by_senders":["bob"]}`))
		if res.Status != 400 || res.Errcode() != "M_INVALID_PARAM" { // as for every bad filter parameter
			t.Fatalf("%d %s", res.Status, res.Raw)
		}
	})
}

// TestHugeRelationIsSentNotIndexed: a relation whose "event_id" is 60 KB
// (content may hold that much) is an ordinary event: the send succeeds and
// the room goes on. Indexed, its keys would make the commit's transaction
// too big for Badger, failing the send (and wedging a room fed such an
// event over federation), so the index skips identifiers over 255 bytes.
func TestHugeRelationIsSentNotIndexed(t *testing.T) {
	e := newEnv(t)
	alice := e.user("alice")
	room := e.room(alice, "private_chat")
	big := "$" + strings.Repeat("a", 60000)
	res := e.call(alice, "PUT", "/_matrix/client/v3/rooms/"+url.PathEscape(room)+"/send/m.room.message/huge-rel", map[string]any{
		"msgtype": "m.text", "body": "huge", "m.relates_to": map[string]any{"rel_type": "m.thread", "event_id": big},
	})
	huge := res.String("event_id")
	after := e.say(alice, room, "after")
	if got := ids(e.messages(alice, room, vals("dir", "b", "limit", "2")).Chunk); !slices.Equal(got, []string{after, huge}) {
		t.Fatalf("timeline %v, want [%s %s]", got, after, huge)
	}
	if b := e.relGet(alice, threadsPath(room), nil); len(b.Chunk) != 0 {
		t.Fatalf("threads: %v", ids(b.Chunk))
	}
}
