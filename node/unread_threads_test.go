package node

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"testing"

	"github.com/edgenode/edgenode/kv"
	"github.com/edgenode/edgenode/node/push"
	"github.com/matrix-org/gomatrixserverlib/spec"
)

// reply sends a thread reply to root, mentioning mention when not "".
func (r *unreadRoom) reply(s Session, root, body, mention string) string {
	r.t.Helper()
	c := map[string]any{"msgtype": "m.text", "body": body,
		"m.relates_to": map[string]any{"rel_type": "m.thread", "event_id": root}}
	if mention != "" {
		c["m.mentions"] = map[string]any{"user_ids": []string{mention}}
	}
	b, _ := json.Marshal(c)
	return r.send(s, "m.room.message", string(b))
}

// wantThreads checks a user's per-thread counts, and that a recount from
// their receipts (rolled back) agrees with the incrementally kept ones.
func (r *unreadRoom) wantThreads(s Session, want map[string][2]int) {
	r.t.Helper()
	got, err := r.n.ThreadUnreadCounts(context.Background(), s.UserID, r.roomID)
	if err != nil {
		r.t.Fatal(err)
	}
	if !maps.Equal(got, want) {
		r.t.Errorf("%s: thread counts %v, want %v", s.UserID, got, want)
	}
	mu, err := r.n.LockRoom(context.Background(), r.roomID)
	if err != nil {
		r.t.Fatal(err)
	}
	defer mu.Unlock()
	errRollback := fmt.Errorf("roll back")
	var again map[string][2]int
	err = r.n.DB.Update(func(tx *kv.Txn) error {
		if err := r.n.recountThreadUnread(tx, r.roomID, s.UserID); err != nil {
			return err
		}
		var err error
		if again, err = push.LoadThreadUnread(tx, s.UserID, r.roomID); err != nil {
			return err
		}
		return errRollback
	})
	if err != errRollback {
		r.t.Fatalf("recount: %v", err)
	}
	if !maps.Equal(again, want) {
		r.t.Errorf("%s: a recount gives %v, the kept counts %v", s.UserID, again, want)
	}
}

// TestUnreadThreadsRecountAgrees: the per-thread counts the commit keeps
// (replies, mentions, the user's own reply, receipts in and out of
// threads) are those a recount from the receipts finds.
func TestUnreadThreadsRecountAgrees(t *testing.T) {
	ctx := context.Background()
	n := newTestNode(t)
	r := newUnreadRoom(t, n)
	root := r.say(r.alice, "root")
	other := r.say(r.carol, "another root")
	r.reply(r.alice, root, "r1", "")
	r.reply(r.carol, root, "r2", r.bob.UserID)
	r.reply(r.alice, other, "o1", "")
	r.wantThreads(r.bob, map[string][2]int{push.ThreadMain: {2, 0}, root: {2, 1}, other: {1, 0}})

	r.reply(r.bob, other, "mine", "")
	r.wantThreads(r.bob, map[string][2]int{push.ThreadMain: {2, 0}, root: {2, 1}})

	last := r.reply(r.alice, root, "r3", "")
	if err := n.SetReceipt(ctx, r.bob.UserID, r.roomID, ReceiptRead, last, root); err != nil {
		t.Fatal(err)
	}
	r.say(r.alice, "main again")
	r.wantThreads(r.bob, map[string][2]int{push.ThreadMain: {3, 0}})
	r.wantThreads(r.carol, map[string][2]int{push.ThreadMain: {1, 0}, root: {1, 0}, other: {2, 0}})
}

// TestUnreadThreadsLeave: a user kicked from a room keeps no per-thread
// counts there (as the room's own count is deleted).
func TestUnreadThreadsLeave(t *testing.T) {
	n := newTestNode(t)
	r := newUnreadRoom(t, n)
	root := r.say(r.alice, "root")
	r.reply(r.alice, root, "r1", "")
	r.wantThreads(r.bob, map[string][2]int{push.ThreadMain: {1, 0}, root: {1, 0}})
	membership(t, n, r.alice, r.roomID, r.bob.UserID, spec.Leave)
	r.wantThreads(r.bob, map[string][2]int{})
}
