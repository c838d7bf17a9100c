package syncapi_test

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/edgenode/edgenode/node"
	"github.com/edgenode/edgenode/node/core"
	"github.com/edgenode/edgenode/node/push"
)

// threadFilter is a /sync filter asking for per-thread counts.
const threadFilter = `{"room":{"timeline":{"unread_thread_notifications":true}}}`

// threadCounts is a joined room's counts from a response's raw JSON:
// unread_notifications and unread_thread_notifications (absent: nil).
type threadCounts struct {
	Main    map[string]int            `json:"unread_notifications"`
	Threads map[string]map[string]int `json:"unread_thread_notifications"`
	present bool
}

func roomCounts(t *testing.T, b syncBody, roomID string) threadCounts {
	t.Helper()
	var raw struct {
		Rooms struct {
			Join map[string]threadCounts `json:"join"`
		} `json:"rooms"`
	}
	if err := json.Unmarshal(b.Raw, &raw); err != nil {
		t.Fatal(err)
	}
	c, ok := raw.Rooms.Join[roomID]
	if !ok {
		t.Fatalf("room %s not in rooms.join: %s", roomID, b.Raw)
	}
	c.present = true
	return c
}

// wantThreadCounts checks the main timeline's notification count and each
// thread's (only those listed may be there).
func wantThreadCounts(t *testing.T, b syncBody, roomID string, main int, threads map[string]int) {
	t.Helper()
	c := roomCounts(t, b, roomID)
	if c.Main["notification_count"] != main {
		t.Errorf("unread_notifications = %v, want notification_count %d", c.Main, main)
	}
	if len(c.Threads) != len(threads) {
		t.Errorf("unread_thread_notifications = %v, want %v", c.Threads, threads)
	}
	for root, n := range threads {
		got, ok := c.Threads[root]
		if !ok || got["notification_count"] != n {
			t.Errorf("unread_thread_notifications[%s] = %v, want notification_count %d", root, got, n)
		}
		if _, ok := got["highlight_count"]; !ok {
			t.Errorf("unread_thread_notifications[%s] has no highlight_count", root)
		}
	}
}

// reply sends a thread reply to root.
func (e *env) reply(s node.Session, roomID, root, body string) string {
	e.t.Helper()
	return e.send(s, roomID, "m.room.message", map[string]any{
		"msgtype": "m.text", "body": body,
		"m.relates_to": map[string]any{"rel_type": "m.thread", "event_id": root},
	})
}

// TestSyncUnreadThreadNotifications: with the filter flag, a thread reply
// counts in its thread and not in the main timeline; a threaded receipt
// clears its own thread only, an unthreaded one everything before it; and
// without the flag the counts are the room's, as before.
func TestSyncUnreadThreadNotifications(t *testing.T) {
	e := newEnv(t)
	alice, bob := e.user("alice"), e.user("bob")
	roomID := e.room(alice, core.PresetPublicChat)
	e.join(bob, roomID)
	withFilter := vals("filter", threadFilter)

	root := e.say(alice, roomID, "root")
	e.reply(alice, roomID, root, "r1")
	r2 := e.reply(alice, roomID, root, "r2")
	main2 := e.say(alice, roomID, "main 2")

	wantThreadCounts(t, e.sync(bob, withFilter), roomID, 2, map[string]int{root: 2})
	plain := e.sync(bob, nil)
	wantUnread(t, plain, roomID, 4, 0)
	if c := roomCounts(t, plain, roomID); c.Threads != nil {
		t.Errorf("unread_thread_notifications without the filter flag: %v", c.Threads)
	}

	// A receipt in the thread clears the thread, not the main timeline.
	e.receipt(bob, roomID, "m.read", r2, root)
	wantThreadCounts(t, e.sync(bob, withFilter), roomID, 2, nil)
	wantUnread(t, e.sync(bob, nil), roomID, 4, 0) // unthreaded counts: as before

	// A receipt for the main timeline clears it, not the thread.
	e.reply(alice, roomID, root, "r3")
	e.receipt(bob, roomID, "m.read", main2, push.ThreadMain)
	wantThreadCounts(t, e.sync(bob, withFilter), roomID, 0, map[string]int{root: 1})

	// An unthreaded receipt covers every thread up to it, and no further.
	main3 := e.say(alice, roomID, "main 3")
	e.reply(alice, roomID, root, "r4")
	e.say(alice, roomID, "main 4")
	wantThreadCounts(t, e.sync(bob, withFilter), roomID, 2, map[string]int{root: 2})
	e.receipt(bob, roomID, "m.read", main3, "")
	wantThreadCounts(t, e.sync(bob, withFilter), roomID, 1, map[string]int{root: 1})

	// A mention in the thread highlights in the thread only.
	e.send(alice, roomID, "m.room.message", map[string]any{
		"msgtype": "m.text", "body": "bob?", "m.mentions": map[string]any{"user_ids": []string{bob.UserID}},
		"m.relates_to": map[string]any{"rel_type": "m.thread", "event_id": root},
	})
	c := roomCounts(t, e.sync(bob, withFilter), roomID)
	if c.Main["highlight_count"] != 0 || c.Threads[root]["highlight_count"] != 1 || c.Threads[root]["notification_count"] != 2 {
		t.Errorf("after a mention in the thread: main %v, thread %v; want the thread's highlight_count 1 of 2, the main one 0", c.Main, c.Threads[root])
	}

	// The user's own reply in the thread means they read it.
	e.reply(bob, roomID, root, "mine")
	wantThreadCounts(t, e.sync(bob, withFilter), roomID, 1, nil)
}

// TestSyncUnreadThreadsBounded: a user's counts track at most
// MaxUnreadThreads threads per room; a new one drops the thread whose
// latest event is oldest, in the commit and in a receipt's recount.
func TestSyncUnreadThreadsBounded(t *testing.T) {
	e := newEnv(t)
	alice, bob := e.user("alice"), e.user("bob")
	roomID := e.room(alice, core.PresetPublicChat)
	e.join(bob, roomID)
	withFilter := vals("filter", threadFilter)

	roots := make([]string, push.MaxUnreadThreads+1)
	for i := range roots {
		roots[i] = e.say(alice, roomID, fmt.Sprintf("root %d", i))
	}
	var last string
	for i, root := range roots {
		last = e.reply(alice, roomID, root, fmt.Sprintf("reply %d", i))
	}
	want := map[string]int{}
	for _, root := range roots[1:] { // the first thread's reply is the oldest
		want[root] = 1
	}
	wantThreadCounts(t, e.sync(bob, withFilter), roomID, len(roots), want)

	// A recount (here for a receipt in another thread) keeps the newest.
	e.receipt(bob, roomID, "m.read", last, roots[len(roots)-1])
	delete(want, roots[len(roots)-1])
	want[roots[0]] = 1 // room again for the oldest
	wantThreadCounts(t, e.sync(bob, withFilter), roomID, len(roots), want)
}
