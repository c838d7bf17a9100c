package clientapi_test

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/edgenode/edgenode/internal/testnode"
	"github.com/edgenode/edgenode/node/push"
)

// unreadCount is roomID's notification_count in a /sync of u's.
func unreadCount(t *testing.T, n *testnode.Node, u testnode.User, roomID string) (notify, highlight float64) {
	t.Helper()
	res := n.Do("GET", v3+"/sync?timeout=0", u.Token, nil)
	expect(t, res, http.StatusOK, "")
	counts := field(res.Body, "rooms", "join", roomID, "unread_notifications")
	notify, _ = field(counts, "notification_count").(float64)
	highlight, _ = field(counts, "highlight_count").(float64)
	return notify, highlight
}

// sharedRoom makes a public room of alice's that bob joins.
func sharedRoom(t *testing.T, n *testnode.Node, alice, bob testnode.User) string {
	t.Helper()
	roomID := createRoom(t, n, alice, map[string]any{"preset": "public_chat"})
	expect(t, n.Do("POST", v3+"/join/"+esc(roomID), bob.Token, map[string]any{}), http.StatusOK, "")
	return roomID
}

// TestPushRuleMutesRoom: a room rule (or an override) with no actions
// stops a room's notification count rising in /sync, and the change shows
// in /sync as m.push_rules account data.
func TestPushRuleMutesRoom(t *testing.T) {
	t.Parallel()
	n := testnode.Start(t, testnode.Options{})
	alice, bob := n.Register("alice"), n.Register("bob")
	roomID := sharedRoom(t, n, alice, bob)
	other := sharedRoom(t, n, alice, bob)

	// The initial sync carries the (default) push rules.
	res := n.Do("GET", v3+"/sync?timeout=0", bob.Token, nil)
	expect(t, res, http.StatusOK, "")
	since := res.String("next_batch")
	if !hasAccountData(res, "m.push_rules") {
		t.Fatalf("initial sync without m.push_rules: %s", res.Raw)
	}

	sendText(t, n, alice, roomID, "t1", "hello")
	if got, _ := unreadCount(t, n, bob, roomID); got != 1 {
		t.Fatalf("count before muting %v, want 1", got)
	}
	expect(t, n.Do("PUT", v3+"/pushrules/global/room/"+esc(roomID), bob.Token, map[string]any{"actions": []any{}}), http.StatusOK, "")

	// The edit is an account data change in the next sync.
	res = n.Do("GET", v3+"/sync?timeout=0&since="+since, bob.Token, nil)
	expect(t, res, http.StatusOK, "")
	if !hasAccountData(res, "m.push_rules") {
		t.Errorf("incremental sync after an edit without m.push_rules: %s", res.Raw)
	}

	for i := range 3 {
		sendText(t, n, alice, roomID, fmt.Sprintf("m%d", i), "still talking")
	}
	if got, _ := unreadCount(t, n, bob, roomID); got != 1 {
		t.Errorf("count of a muted room %v, want it to stay 1", got)
	}
	// Other rooms still count.
	sendText(t, n, alice, other, "o1", "elsewhere")
	if got, _ := unreadCount(t, n, bob, other); got != 1 {
		t.Errorf("count of another room %v, want 1", got)
	}

	// An override rule mutes even mentions; deleting it restores them.
	mute := map[string]any{"actions": []any{"dont_notify"}, "conditions": []any{
		map[string]any{"kind": "event_match", "key": "room_id", "pattern": other}}}
	expect(t, n.Do("PUT", v3+"/pushrules/global/override/mute-other", bob.Token, mute), http.StatusOK, "")
	mention := map[string]any{"msgtype": "m.text", "body": "bob!", "m.mentions": map[string]any{"user_ids": []any{bob.UserID}}}
	expect(t, n.Do("PUT", v3+"/rooms/"+esc(other)+"/send/m.room.message/o2", alice.Token, mention), http.StatusOK, "")
	if got, hl := unreadCount(t, n, bob, other); got != 1 || hl != 0 {
		t.Errorf("muted mention: counts %v/%v, want 1/0", got, hl)
	}
	expect(t, n.Do("DELETE", v3+"/pushrules/global/override/mute-other", bob.Token, nil), http.StatusOK, "")
	expect(t, n.Do("PUT", v3+"/rooms/"+esc(other)+"/send/m.room.message/o3", alice.Token, mention), http.StatusOK, "")
	if got, hl := unreadCount(t, n, bob, other); got != 2 || hl != 1 {
		t.Errorf("mention after unmuting: counts %v/%v, want 2/1", got, hl)
	}

	// Turning defaults off counts too: no more plain messages anywhere (a
	// room of two also has .m.rule.room_one_to_one).
	for _, id := range []string{".m.rule.message", ".m.rule.room_one_to_one"} {
		expect(t, n.Do("PUT", v3+"/pushrules/global/underride/"+id+"/enabled", bob.Token, map[string]any{"enabled": false}), http.StatusOK, "")
	}
	sendText(t, n, alice, other, "o4", "plain")
	if got, _ := unreadCount(t, n, bob, other); got != 2 {
		t.Errorf("with the message rules off, count %v, want 2", got)
	}
}

func hasAccountData(res testnode.Response, evType string) bool {
	evs, _ := field(res.Body, "account_data", "events").([]any)
	for _, ev := range evs {
		if field(ev, "type") == evType {
			return true
		}
	}
	return false
}

// TestNotifications: GET /notifications lists the events that notified the
// user, newest first, with only=highlight, limit and from, and marks those
// a read receipt covers as read.
func TestNotifications(t *testing.T) {
	t.Parallel()
	n := testnode.Start(t, testnode.Options{})
	alice, bob := n.Register("alice"), n.Register("bob")
	roomID := sharedRoom(t, n, alice, bob)
	first := sendText(t, n, alice, roomID, "t1", "hello")
	mention := map[string]any{"msgtype": "m.text", "body": "look", "m.mentions": map[string]any{"user_ids": []any{bob.UserID}}}
	res := n.Do("PUT", v3+"/rooms/"+esc(roomID)+"/send/m.room.message/t2", alice.Token, mention)
	expect(t, res, http.StatusOK, "")
	second := res.String("event_id")
	third := sendText(t, n, alice, roomID, "t3", "bye")
	n.Do("PUT", v3+"/rooms/"+esc(roomID)+"/send/m.reaction/t4", alice.Token, map[string]any{}) // does not notify

	ids := func(res testnode.Response) []string {
		var out []string
		list, _ := field(res.Body, "notifications").([]any)
		for _, x := range list {
			id, _ := field(x, "event", "event_id").(string)
			out = append(out, id)
		}
		return out
	}
	runCases(t, n, []apiCase{
		{name: "all, newest first", method: "GET", path: v3 + "/notifications", token: bob.Token, status: 200,
			check: func(t *testing.T, res testnode.Response) {
				if got := fmt.Sprint(ids(res)); got != fmt.Sprint([]string{third, second, first}) {
					t.Errorf("notifications %v, want %v", got, []string{third, second, first})
				}
				x := field(res.Body, "notifications").([]any)[0]
				if field(x, "room_id") != roomID || field(x, "read") != false || field(x, "ts") == nil || field(x, "actions") == nil {
					t.Errorf("notification %v", x)
				}
				if _, ok := res.Body["next_token"]; ok {
					t.Errorf("next_token on the last page: %s", res.Raw)
				}
			}},
		{name: "highlights", method: "GET", path: v3 + "/notifications?only=highlight", token: bob.Token, status: 200,
			check: func(t *testing.T, res testnode.Response) {
				if got := fmt.Sprint(ids(res)); got != fmt.Sprint([]string{second}) {
					t.Errorf("highlights %v, want [%s]", got, second)
				}
			}},
		{name: "paged", method: "GET", path: v3 + "/notifications?limit=2", token: bob.Token, status: 200,
			check: func(t *testing.T, res testnode.Response) {
				if got := fmt.Sprint(ids(res)); got != fmt.Sprint([]string{third, second}) {
					t.Fatalf("page 1 %v", got)
				}
				next := res.String("next_token")
				res = n.Do("GET", v3+"/notifications?limit=2&from="+next, bob.Token, nil)
				if got := fmt.Sprint(ids(res)); got != fmt.Sprint([]string{first}) || res.Body["next_token"] != nil {
					t.Errorf("page 2 %v: %s", got, res.Raw)
				}
			}},
		{name: "not the sender's", method: "GET", path: v3 + "/notifications", token: alice.Token, status: 200,
			check: func(t *testing.T, res testnode.Response) {
				if len(ids(res)) != 0 {
					t.Errorf("alice's notifications %s", res.Raw)
				}
			}},
		{name: "bad limit", method: "GET", path: v3 + "/notifications?limit=x", token: bob.Token, status: 400, errcode: "M_INVALID_PARAM"},
		{name: "bad from", method: "GET", path: v3 + "/notifications?from=x", token: bob.Token, status: 400, errcode: "M_INVALID_PARAM"},
		{name: "needs a token", method: "GET", path: v3 + "/notifications", status: 401, errcode: "M_MISSING_TOKEN"},
	})

	// A read receipt on the second event marks it and the first read.
	expect(t, n.Do("POST", v3+"/rooms/"+esc(roomID)+"/receipt/m.read/"+esc(second), bob.Token, map[string]any{}), http.StatusOK, "")
	res = n.Do("GET", v3+"/notifications", bob.Token, nil)
	var read []any
	for _, x := range field(res.Body, "notifications").([]any) {
		read = append(read, field(x, "read"))
	}
	if fmt.Sprint(read) != "[false true true]" {
		t.Errorf("read flags %v, want [false true true]", read)
	}
}

// TestNotificationsBounded: a user's notifications index keeps the newest
// ones only (push.MaxNotifications, give or take the trimming slack).
func TestNotificationsBounded(t *testing.T) {
	t.Parallel()
	n := testnode.Start(t, testnode.Options{})
	alice, bob := n.Register("alice"), n.Register("bob")
	roomID := sharedRoom(t, n, alice, bob)
	const sent = 700
	var last string
	for i := range sent {
		last = sendText(t, n, alice, roomID, fmt.Sprint("t", i), "hi")
	}
	total, from := 0, ""
	for page := 0; ; page++ {
		res := n.Do("GET", v3+"/notifications?limit=100"+from, bob.Token, nil)
		expect(t, res, http.StatusOK, "")
		list, _ := field(res.Body, "notifications").([]any)
		if page == 0 && (len(list) == 0 || field(list[0], "event", "event_id") != last) {
			t.Fatalf("newest notification is not the last event: %s", res.Raw)
		}
		total += len(list)
		next := res.String("next_token")
		if next == "" || page > 20 {
			break
		}
		from = "&from=" + next
	}
	if total < push.MaxNotifications || total > push.MaxNotifications+100 {
		t.Errorf("%d notifications kept of %d, want about %d", total, sent, push.MaxNotifications)
	}
}

// TestPushRulesAfterRestart: a user's rules and pushers are on disk: after
// a restart a muted room stays muted and the pusher is still there.
func TestPushRulesAfterRestart(t *testing.T) {
	t.Parallel()
	n := testnode.Start(t, testnode.Options{})
	alice, bob := n.Register("alice"), n.Register("bob")
	roomID := sharedRoom(t, n, alice, bob)
	expect(t, n.Do("PUT", v3+"/pushrules/global/room/"+esc(roomID), bob.Token, map[string]any{"actions": []any{}}), http.StatusOK, "")
	setPusher(t, n, bob, "https://gw.example", "bob-key", nil)
	dir := n.Dir
	n.Stop()

	n = testnode.Start(t, testnode.Options{Dir: dir})
	sendText(t, n, alice, roomID, "t1", "after the restart")
	if got, _ := unreadCount(t, n, bob, roomID); got != 0 {
		t.Errorf("muted room's count after a restart %v, want 0", got)
	}
	res := n.Do("GET", v3+"/pushrules/global/room/"+esc(roomID), bob.Token, nil)
	expect(t, res, http.StatusOK, "")
	if ps, _ := n.Do("GET", v3+"/pushers", bob.Token, nil).Body["pushers"].([]any); len(ps) != 1 {
		t.Errorf("pushers after a restart: %v", ps)
	}
}
