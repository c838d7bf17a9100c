package syncapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/edgenode/edgenode/internal/testnode"
	"github.com/edgenode/edgenode/node/core"
)

// TestSlidingSyncListOrderAndRanges: rooms are ordered by their latest bump
// event, a range picks from that order, the count covers the whole list,
// and a state event that is no bump does not move a room.
func TestSlidingSyncListOrderAndRanges(t *testing.T) {
	e := newEnv(t)
	alice := e.user("alice")
	a := e.room(alice, "private_chat")
	b := e.room(alice, "private_chat")
	c := e.room(alice, "private_chat")
	e.say(alice, a, "a is newest")
	e.setState(alice, b, "m.room.topic", "", map[string]string{"topic": "no bump"})

	res := e.ss(alice, map[string]any{"lists": map[string]any{"all": ssList(0, 1, 1)}})
	if res.Lists["all"].Count != 3 {
		t.Fatalf("count = %d, want 3: %s", res.Lists["all"].Count, res.Raw)
	}
	if len(res.Rooms) != 2 || res.Rooms[a].BumpStamp == 0 || res.Rooms[c].BumpStamp == 0 {
		t.Fatalf("rooms = %v, want %s and %s: %s", roomIDs(res.Rooms), a, c, res.Raw)
	}
	if res.Rooms[a].BumpStamp <= res.Rooms[c].BumpStamp {
		t.Errorf("bump stamps: a %d, c %d; a had the latest message", res.Rooms[a].BumpStamp, res.Rooms[c].BumpStamp)
	}
	if !slices.Equal(res.Rooms[a].Lists, []string{"all"}) || !res.Rooms[a].Initial || res.Rooms[a].Membership != "join" {
		t.Errorf("room a: lists %v initial %v membership %q", res.Rooms[a].Lists, res.Rooms[a].Initial, res.Rooms[a].Membership)
	}

	// Widening the range sends only the room not sent yet.
	res = e.ss(alice, map[string]any{"pos": res.Pos, "lists": map[string]any{"all": ssList(0, 2, 1)}})
	if len(res.Rooms) != 1 || res.Rooms[b].Timeline == nil {
		t.Fatalf("after widening: rooms %v, want only %s: %s", roomIDs(res.Rooms), b, res.Raw)
	}
}

// TestSlidingSyncTimelineAndRequiredState: timeline_limit caps the
// timeline (limited, prev_batch), and required_state returns what it
// names, with $LAZY adding the senders' member events, $ME the user's own,
// and * everything; the MSC's include/exclude form works too.
func TestSlidingSyncTimelineAndRequiredState(t *testing.T) {
	e := newEnv(t)
	alice, bob := e.user("alice"), e.user("bob")
	room := e.room(alice, "public_chat")
	e.setState(alice, room, "m.room.name", "", map[string]string{"name": "Garden"})
	e.join(bob, room)
	for i := range 4 {
		e.say(alice, room, fmt.Sprint("m", i))
	}
	e.say(bob, room, "last")

	res := e.ss(alice, map[string]any{"lists": map[string]any{"l": ssList(0, 9, 2,
		[]string{"m.room.name", ""}, []string{"m.room.member", "$LAZY"})}})
	r := res.Rooms[room]
	if len(r.Timeline) != 2 || !r.Limited || r.PrevBatch == "" || bodies(r.Timeline)[1] != "last" {
		t.Fatalf("timeline %v limited %v prev_batch %q: %s", bodies(r.Timeline), r.Limited, r.PrevBatch, res.Raw)
	}
	st := ssStateSet(r.RequiredState)
	if !st["m.room.name|"] || !st["m.room.member|"+bob.UserID] || !st["m.room.member|"+alice.UserID] || st["m.room.create|"] {
		t.Errorf("required_state = %v", st)
	}
	if r.Name == nil || *r.Name != "Garden" || intOf(r.JoinedCount) != 2 || intOf(r.InvitedCount) != 0 {
		t.Errorf("name %v joined %d invited %d", r.Name, intOf(r.JoinedCount), intOf(r.InvitedCount))
	}
	if intOf(r.NumLive) != 0 {
		t.Errorf("num_live on a first response = %d, want 0", intOf(r.NumLive))
	}

	res = e.ss(bob, map[string]any{"lists": map[string]any{"l": ssList(0, 9, 0, []string{"m.room.member", "$ME"})}})
	st = ssStateSet(res.Rooms[room].RequiredState)
	if len(st) != 1 || !st["m.room.member|"+bob.UserID] || len(res.Rooms[room].Timeline) != 0 {
		t.Errorf("$ME with timeline_limit 0: state %v, timeline %d", st, len(res.Rooms[room].Timeline))
	}

	res = e.ss(bob, map[string]any{"lists": map[string]any{"l": ssList(0, 9, 1, []string{"*", "*"})}})
	st = ssStateSet(res.Rooms[room].RequiredState)
	if !st["m.room.create|"] || !st["m.room.power_levels|"] || !st["m.room.member|"+alice.UserID] {
		t.Errorf("* *: state %v", st)
	}

	res = e.ss(bob, map[string]any{"lists": map[string]any{"l": map[string]any{
		"range": []int{0, 9}, "timeline_limit": 1,
		"required_state": map[string]any{"include": []any{map[string]any{}},
			"exclude": []any{map[string]any{"type": "m.room.member"}}},
	}}})
	st = ssStateSet(res.Rooms[room].RequiredState)
	if !st["m.room.create|"] || st["m.room.member|"+alice.UserID] {
		t.Errorf("include all, exclude members: state %v", st)
	}
}

// TestSlidingSyncIncremental: with pos, unchanged rooms are not resent; a
// new message sends its room alone, with the message live; an unknown or
// foreign pos answers M_UNKNOWN_POS.
func TestSlidingSyncIncremental(t *testing.T) {
	e := newEnv(t)
	alice, bob := e.user("alice"), e.user("bob")
	r1 := e.room(alice, "public_chat")
	r2 := e.room(alice, "public_chat")
	e.join(bob, r1)
	lists := map[string]any{"l": ssList(0, 9, 5)}
	res := e.ss(alice, map[string]any{"lists": lists})
	if len(res.Rooms) != 2 {
		t.Fatalf("first: %d rooms: %s", len(res.Rooms), res.Raw)
	}
	again := e.ss(alice, map[string]any{"pos": res.Pos, "lists": lists})
	if len(again.Rooms) != 0 {
		t.Fatalf("nothing changed but rooms were resent: %s", again.Raw)
	}
	e.say(bob, r1, "news")
	inc := e.ss(alice, map[string]any{"pos": again.Pos, "lists": lists})
	r := inc.Rooms[r1]
	if len(inc.Rooms) != 1 || r.Initial || len(r.Timeline) != 1 || r.Timeline[0].body() != "news" || intOf(r.NumLive) != 1 {
		t.Fatalf("incremental: %s", inc.Raw)
	}
	if intOf(r.NotificationCount) != 1 {
		t.Errorf("notification_count = %d, want 1", intOf(r.NotificationCount))
	}
	if _, ok := inc.Rooms[r2]; ok {
		t.Errorf("unchanged room resent")
	}
	// A retry with the previous pos (the response was lost) still works.
	retry := e.ss(alice, map[string]any{"pos": again.Pos, "lists": lists})
	if len(retry.Rooms[r1].Timeline) != 1 {
		t.Errorf("retry with the previous pos: %s", retry.Raw)
	}

	if bad := e.tn.Do("POST", ssPath, alice.AccessToken, map[string]any{"set_presence": "dancing"}); bad.Errcode() != "M_INVALID_PARAM" {
		t.Errorf("bad set_presence: %d %s", bad.Status, bad.Raw)
	}
	for name, pos := range map[string]string{"garbage": "nope", "other device": inc.Pos} {
		who := alice
		if name == "other device" {
			who = e.user("mallory")
		}
		bad := e.tn.Do("POST", ssPath, who.AccessToken, map[string]any{"pos": pos, "lists": lists})
		if bad.Status != 400 || bad.Errcode() != "M_UNKNOWN_POS" {
			t.Errorf("%s pos: %d %s", name, bad.Status, bad.Raw)
		}
	}
}

// TestSlidingSyncSubscriptions: a subscription returns a room outside every
// range, with its own timeline limit; an expanded timeline comes whole;
// after unsubscribing, the room's news no longer comes.
func TestSlidingSyncSubscriptions(t *testing.T) {
	e := newEnv(t)
	alice := e.user("alice")
	old := e.room(alice, "private_chat")
	for i := range 5 {
		e.say(alice, old, fmt.Sprint("old", i))
	}
	top := e.room(alice, "private_chat")
	lists := map[string]any{"l": ssList(0, 0, 1)}
	res := e.ss(alice, map[string]any{"lists": lists})
	if _, ok := res.Rooms[old]; ok || len(res.Rooms) != 1 {
		t.Fatalf("range [0,0]: %v", roomIDs(res.Rooms))
	}
	res = e.ss(alice, map[string]any{"pos": res.Pos, "lists": lists,
		"room_subscriptions": map[string]any{old: map[string]any{"timeline_limit": 20, "required_state": [][]string{}}}})
	r := res.Rooms[old]
	if len(r.Timeline) < 6 || r.Limited || r.Lists != nil || !r.Initial {
		t.Fatalf("subscription: %d events, limited %v, lists %v: %s", len(r.Timeline), r.Limited, r.Lists, res.Raw)
	}
	// The subscription is remembered without being repeated.
	e.say(alice, old, "more")
	res = e.ss(alice, map[string]any{"pos": res.Pos, "lists": lists})
	if got := res.Rooms[old].Timeline; len(got) != 1 || got[0].body() != "more" {
		t.Fatalf("subscribed room's news: %s", res.Raw)
	}
	res = e.ss(alice, map[string]any{"pos": res.Pos, "lists": lists, "unsubscribe_rooms": []string{old}})
	e.say(alice, top, "top")
	e.say(alice, old, "unseen")
	// old has the latest bump now and enters the range [0,0] instead.
	res = e.ss(alice, map[string]any{"pos": res.Pos, "lists": map[string]any{"l": ssList(1, 1, 1)}})
	if r, ok := res.Rooms[old]; ok {
		t.Errorf("unsubscribed room outside the range sent: %+v", r)
	}
	// A subscription to a room the user is not in is ignored.
	stranger := e.user("stranger")
	res = e.ss(stranger, map[string]any{"room_subscriptions": map[string]any{old: map[string]any{"timeline_limit": 5}}})
	if len(res.Rooms) != 0 {
		t.Errorf("stranger got %s", res.Raw)
	}
}

// TestSlidingSyncInviteAndFilters: an invite carries invite_state, and the
// is_invite, is_dm, is_encrypted, room type and spaces filters select rooms.
func TestSlidingSyncInviteAndFilters(t *testing.T) {
	e := newEnv(t)
	alice, bob := e.user("alice"), e.user("bob")
	inv := e.room(alice, "private_chat")
	e.membership(alice, inv, bob.UserID, "invite")
	enc := e.room(bob, "private_chat", core.InitialStateEvent{Type: "m.room.encryption",
		Content: json.RawMessage(`{"algorithm":"m.megolm.v1.aes-sha2"}`)})
	dm := e.room(bob, "private_chat")
	space, err := e.n.CreateRoom(context.Background(), core.CreateRoomRequest{Creator: bob.UserID, DeviceID: bob.DeviceID,
		Preset: "private_chat", CreationContent: json.RawMessage(`{"type":"m.space"}`)})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.n.SetAccountData(context.Background(), bob.UserID, "", "m.direct",
		json.RawMessage(`{"`+alice.UserID+`":["`+dm+`"]}`)); err != nil {
		t.Fatal(err)
	}
	e.setState(bob, space, "m.space.child", dm, map[string]any{"via": []string{"x"}})
	list := func(f map[string]any) map[string]any {
		l := ssList(0, 20, 1)
		l["filters"] = f
		return l
	}
	res := e.ss(bob, map[string]any{"lists": map[string]any{
		"inv":    list(map[string]any{"is_invite": true}),
		"dm":     list(map[string]any{"is_dm": true}),
		"enc":    list(map[string]any{"is_encrypted": true}),
		"spaces": list(map[string]any{"room_types": []any{"m.space"}}),
		"rooms":  list(map[string]any{"not_room_types": []any{"m.space"}, "is_invite": false}),
		"child":  list(map[string]any{"spaces": []string{space}}),
	}})
	want := map[string][]string{"inv": {inv}, "dm": {dm}, "enc": {enc}, "spaces": {space}, "rooms": {enc, dm}, "child": {dm}}
	for name, ids := range want {
		if got := res.Lists[name].Count; got != len(ids) {
			t.Errorf("list %s: count %d, want %d", name, got, len(ids))
		}
		for _, id := range ids {
			if !slices.Contains(res.Rooms[id].Lists, name) {
				t.Errorf("list %s lacks %s (has lists %v)", name, id, res.Rooms[id].Lists)
			}
		}
	}
	ir := res.Rooms[inv]
	if ir.Membership != "invite" || !ssStateSet(ir.InviteState)["m.room.member|"+bob.UserID] || ir.Timeline != nil {
		t.Errorf("invite: %+v", ir)
	}
	if !res.Rooms[dm].IsDM {
		t.Errorf("dm room lacks is_dm")
	}
}

// TestSlidingSyncLongPoll: a request with pos and a timeout waits and
// returns as soon as a message arrives.
func TestSlidingSyncLongPoll(t *testing.T) {
	e := newEnv(t)
	alice := e.user("alice")
	room := e.room(alice, "private_chat")
	lists := map[string]any{"l": ssList(0, 9, 5)}
	res := e.ss(alice, map[string]any{"lists": lists})
	got := make(chan ssResp, 1)
	go func() {
		got <- e.ss(alice, map[string]any{"pos": res.Pos, "timeout": 20000, "lists": lists})
	}()
	// The request may start listening before or after this message: either
	// way the room's news is in its answer.
	start := time.Now()
	e.say(alice, room, "wake")
	select {
	case r := <-got:
		if tl := r.Rooms[room].Timeline; len(tl) != 1 || tl[0].body() != "wake" {
			t.Fatalf("long-poll answer: %s", r.Raw)
		}
		if time.Since(start) > 15*time.Second {
			t.Errorf("woke after %v", time.Since(start))
		}
	case <-time.After(30 * time.Second):
		t.Fatal("long-poll did not return within 30 s")
	}
}

// TestSlidingSyncConnectionBound: a device keeps a bounded number of
// connections; the least recently used one is dropped and its pos is
// unknown afterwards.
func TestSlidingSyncConnectionBound(t *testing.T) {
	e := newEnv(t)
	alice := e.user("alice")
	e.room(alice, "private_chat")
	var first string
	for i := range 12 {
		res := e.ss(alice, map[string]any{"conn_id": fmt.Sprint("c", i), "lists": map[string]any{"l": ssList(0, 1, 1)}})
		if i == 0 {
			first = res.Pos
		}
	}
	bad := e.tn.Do("POST", ssPath, alice.AccessToken, map[string]any{"conn_id": "c0", "pos": first})
	if bad.Status != 400 || bad.Errcode() != "M_UNKNOWN_POS" {
		t.Errorf("evicted connection's pos: %d %s", bad.Status, bad.Raw)
	}
	// A new connection under a conn_id replaces the old one.
	a := e.ss(alice, map[string]any{"conn_id": "x"})
	e.ss(alice, map[string]any{"conn_id": "x"})
	bad = e.tn.Do("POST", ssPath, alice.AccessToken, map[string]any{"conn_id": "x", "pos": a.Pos})
	if bad.Errcode() != "M_UNKNOWN_POS" {
		t.Errorf("replaced connection's pos: %d %s", bad.Status, bad.Raw)
	}
}

func roomIDs[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// TestSlidingSyncExpandedTimeline: a room sent with a small timeline comes
// again whole, marked expanded_timeline, when a larger limit applies; a
// smaller one later does not resend it.
func TestSlidingSyncExpandedTimeline(t *testing.T) {
	e := newEnv(t)
	alice := e.user("alice")
	room := e.room(alice, "private_chat")
	for i := range 4 {
		e.say(alice, room, fmt.Sprint("m", i))
	}
	res := e.ss(alice, map[string]any{"lists": map[string]any{"l": ssList(0, 9, 1)}})
	if len(res.Rooms[room].Timeline) != 1 {
		t.Fatalf("limit 1: %s", res.Raw)
	}
	res = e.ss(alice, map[string]any{"pos": res.Pos, "lists": map[string]any{"l": ssList(0, 9, 1)},
		"room_subscriptions": map[string]any{room: map[string]any{"timeline_limit": 3}}})
	r := res.Rooms[room]
	if !r.ExpandedTimeline || !r.Initial || len(r.Timeline) != 3 || r.Timeline[2].body() != "m3" {
		t.Fatalf("expanded: %s", res.Raw)
	}
	res = e.ss(alice, map[string]any{"pos": res.Pos, "lists": map[string]any{"l": ssList(0, 9, 1)}, "unsubscribe_rooms": []string{room}})
	if len(res.Rooms) != 0 {
		t.Errorf("a smaller limit resent the room: %s", res.Raw)
	}
}

// TestSlidingSyncRequiredStateExpansion: a config asking for more state
// sends the room again with that state at once; dropping the config again
// sends nothing.
func TestSlidingSyncRequiredStateExpansion(t *testing.T) {
	e := newEnv(t)
	alice := e.user("alice")
	room := e.room(alice, "private_chat")
	lists := map[string]any{"l": ssList(0, 9, 1, []string{"m.room.name", ""})}
	res := e.ss(alice, map[string]any{"lists": lists})
	if ssStateSet(res.Rooms[room].RequiredState)["m.room.create|"] {
		t.Fatalf("create sent without being asked for: %s", res.Raw)
	}
	res = e.ss(alice, map[string]any{"pos": res.Pos, "lists": lists,
		"room_subscriptions": map[string]any{room: map[string]any{"timeline_limit": 1, "required_state": [][]string{{"m.room.create", ""}}}}})
	if r := res.Rooms[room]; r.Initial || !ssStateSet(r.RequiredState)["m.room.create|"] {
		t.Fatalf("expanded required_state: %s", res.Raw)
	}
	res = e.ss(alice, map[string]any{"pos": res.Pos, "lists": lists, "unsubscribe_rooms": []string{room}})
	if len(res.Rooms) != 0 {
		t.Errorf("narrowed required_state resent the room: %s", res.Raw)
	}
}

// TestSlidingSyncAfterRestart: connections live in memory only, so after a
// restart a pos is unknown (M_UNKNOWN_POS) and the client starts over, which
// works at once.
func TestSlidingSyncAfterRestart(t *testing.T) {
	dir := t.TempDir()
	tn := testnode.Start(t, testnode.Options{Dir: dir})
	u := tn.Register("alice")
	lists := map[string]any{"l": ssList(0, 9, 1)}
	res := tn.Do("POST", ssPath, u.Token, map[string]any{"lists": lists})
	pos := res.String("pos")
	if res.Status != 200 || pos == "" {
		t.Fatalf("first: %d %s", res.Status, res.Raw)
	}
	tn.Stop()
	tn = testnode.Start(t, testnode.Options{Dir: dir})
	res = tn.Do("POST", ssPath, u.Token, map[string]any{"pos": pos, "lists": lists})
	if res.Status != 400 || res.Errcode() != "M_UNKNOWN_POS" {
		t.Fatalf("pos from before the restart: %d %s", res.Status, res.Raw)
	}
	if res = tn.Do("POST", ssPath, u.Token, map[string]any{"lists": lists}); res.Status != 200 {
		t.Fatalf("new connection: %d %s", res.Status, res.Raw)
	}
}

// TestSlidingSyncHeroesAndHighlights: a room without a name carries heroes
// (the other members, with their display names), and a message mentioning
// the user counts in both notification_count and highlight_count, an
// ordinary one in notification_count only.
func TestSlidingSyncHeroesAndHighlights(t *testing.T) {
	e := newEnv(t)
	alice, bob := e.user("alice"), e.user("bob")
	room := e.room(alice, "public_chat")
	e.join(bob, room)
	name := "Bob B."
	if err := e.n.SetProfile(context.Background(), bob.UserID, bob.DeviceID, &name, nil); err != nil {
		t.Fatal(err) // also updates bob's member event in his rooms
	}
	e.say(bob, room, "plain")
	e.send(bob, room, "m.room.message", map[string]any{
		"msgtype": "m.text", "body": "hey alice", "m.mentions": map[string]any{"user_ids": []string{alice.UserID}},
	})

	res := e.ss(alice, map[string]any{"lists": map[string]any{"l": ssList(0, 9, 1)}})
	r := res.Rooms[room]
	if r.Name != nil {
		t.Fatalf("room has a name %q; the test needs one without: %s", *r.Name, res.Raw)
	}
	if len(r.Heroes) != 1 || r.Heroes[0].UserID != bob.UserID || r.Heroes[0].DisplayName != "Bob B." {
		t.Errorf("heroes = %+v, want bob as Bob B.: %s", r.Heroes, res.Raw)
	}
	if intOf(r.NotificationCount) != 2 || intOf(r.HighlightCount) != 1 {
		t.Errorf("notification_count %d highlight_count %d, want 2 and 1", intOf(r.NotificationCount), intOf(r.HighlightCount))
	}
}
