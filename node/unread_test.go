package node

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/edgenode/edgenode/kv"
	"github.com/edgenode/edgenode/node/core"
	"github.com/edgenode/edgenode/node/push"
	"github.com/matrix-org/gomatrixserverlib/spec"
)

// unreadRoom is a public room of alice (the creator, power 100) that bob
// and carol (power 0) joined.
type unreadRoom struct {
	t                 *testing.T
	n                 *Node
	roomID            string
	alice, bob, carol Session
}

func newUnreadRoom(t *testing.T, n *Node) *unreadRoom {
	t.Helper()
	r := &unreadRoom{t: t, n: n, alice: session(n, "alice"), bob: session(n, "bob"), carol: session(n, "carol")}
	var err error
	r.roomID, err = n.CreateRoom(context.Background(), core.CreateRoomRequest{Creator: r.alice.UserID, Preset: core.PresetPublicChat})
	if err != nil {
		t.Fatal(err)
	}
	membership(t, n, r.bob, r.roomID, r.bob.UserID, spec.Join)
	membership(t, n, r.carol, r.roomID, r.carol.UserID, spec.Join)
	return r
}

// send sends an event of type evType with the given JSON content.
func (r *unreadRoom) send(s Session, evType, content string) string {
	r.t.Helper()
	id, err := r.n.SendEvent(context.Background(), core.SendRequest{
		Sender: s.UserID, DeviceID: s.DeviceID, RoomID: r.roomID, Type: evType, Content: json.RawMessage(content),
	})
	if err != nil {
		r.t.Fatalf("send %s: %v", evType, err)
	}
	return id
}

func (r *unreadRoom) say(s Session, body string) string {
	r.t.Helper()
	c, _ := json.Marshal(map[string]string{"msgtype": "m.text", "body": body})
	return r.send(s, "m.room.message", string(c))
}

// want checks a user's counts, and that a recount from scratch agrees with
// the incrementally kept ones.
func (r *unreadRoom) want(s Session, notify, highlight int) {
	r.t.Helper()
	wantUnread(r.t, r.n, s.UserID, r.roomID, notify, highlight)
	if got := recount(r.t, r.n, s.UserID, r.roomID); got != [2]int{notify, highlight} {
		r.t.Errorf("%s: recount gives %v, incremental counts %v", s.UserID, got, [2]int{notify, highlight})
	}
}

func wantUnread(t *testing.T, n *Node, userID, roomID string, notify, highlight int) {
	t.Helper()
	gn, gh, err := n.UnreadCounts(context.Background(), userID, roomID)
	if err != nil {
		t.Fatal(err)
	}
	if gn != notify || gh != highlight {
		t.Errorf("%s: unread (notify, highlight) = (%d, %d), want (%d, %d)", userID, gn, gh, notify, highlight)
	}
}

// recount recomputes a user's counts from their receipts the way a receipt
// does, in a transaction that is rolled back, and returns them.
func recount(t *testing.T, n *Node, userID, roomID string) [2]int {
	t.Helper()
	mu, err := n.LockRoom(context.Background(), roomID)
	if err != nil {
		t.Fatal(err)
	}
	defer mu.Unlock()
	var got [2]int
	errRollback := fmt.Errorf("roll back")
	err = n.DB.Update(func(tx *kv.Txn) error {
		if err := n.recountUnread(tx, roomID, userID); err != nil {
			return err
		}
		var err error
		got[0], got[1], err = push.LoadUnread(tx, userID, roomID)
		if err != nil {
			return err
		}
		return errRollback
	})
	if err != errRollback {
		t.Fatalf("recount: %v", err)
	}
	return got
}

// TestUnreadCounter follows counts through messages, rules, receipts, the
// user's own messages and leaving.
func TestUnreadCounter(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	n := newTestNode(t)
	r := newUnreadRoom(t, n)
	r.want(r.alice, 0, 0) // the others' joins do not notify
	r.want(r.bob, 0, 0)

	first := r.say(r.alice, "hello")
	r.say(r.alice, "anyone?")
	r.want(r.bob, 2, 0)
	r.want(r.carol, 2, 0)
	r.want(r.alice, 0, 0) // not for her own messages

	r.send(r.alice, "m.room.message", `{"msgtype":"m.text","body":"bob, look","m.mentions":{"user_ids":["`+r.bob.UserID+`"]}}`)
	r.want(r.bob, 3, 1)
	r.want(r.carol, 3, 0)
	r.send(r.alice, "m.room.message", `{"msgtype":"m.notice","body":"a bot says"}`)
	r.send(r.alice, "m.reaction", `{"m.relates_to":{"rel_type":"m.annotation","event_id":"`+first+`","key":"x"}}`)
	r.send(r.alice, "m.room.message", `{"msgtype":"m.text","body":"* hi","m.new_content":{"msgtype":"m.text","body":"hi"},"m.relates_to":{"rel_type":"m.replace","event_id":"`+first+`"}}`)
	r.want(r.bob, 3, 1) // notices, reactions and edits do not count

	// Room mentions highlight only from a sender with the power to make them.
	r.send(r.carol, "m.room.message", `{"msgtype":"m.text","body":"all","m.mentions":{"room":true}}`)
	r.want(r.bob, 4, 1)
	r.want(r.alice, 1, 0)
	r.send(r.alice, "m.room.message", `{"msgtype":"m.text","body":"all","m.mentions":{"room":true}}`)
	r.want(r.bob, 5, 2)
	r.want(r.carol, 1, 1) // carol's own message reset hers

	// Legacy mentions by display name, without m.mentions.
	sendState(t, n, r.bob, r.roomID, spec.MRoomMember, r.bob.UserID, map[string]string{"membership": "join", "displayname": "Robert Tables"})
	r.want(r.bob, 0, 0) // his own event
	r.say(r.alice, "thanks robert tables!")
	r.want(r.bob, 1, 1)
	r.want(r.carol, 2, 1)

	// A receipt recounts from the event it names; receipts do not go back.
	mid := r.say(r.alice, "two")
	r.say(r.carol, "three")
	r.want(r.bob, 3, 1)
	if err := n.SetReceipt(ctx, r.bob.UserID, r.roomID, ReceiptRead, mid, ""); err != nil {
		t.Fatal(err)
	}
	r.want(r.bob, 1, 0)
	if err := n.SetReceipt(ctx, r.bob.UserID, r.roomID, ReceiptRead, first, ""); err != nil {
		t.Fatal(err)
	}
	r.want(r.bob, 1, 0)

	// Sending resets; leaving deletes the record.
	r.say(r.bob, "I'm here")
	r.want(r.bob, 0, 0)
	r.say(r.alice, "hi bob")
	r.want(r.bob, 1, 1)
	membership(t, n, r.bob, r.roomID, r.bob.UserID, spec.Leave)
	wantUnread(t, n, r.bob.UserID, r.roomID, 0, 0)
	if c := countPrefix(t, n, kv.Key(core.TableUnread, r.bob.UserID)); c != 0 {
		t.Errorf("bob left but has %d unread records", c)
	}
	// A kick deletes the record too.
	r.want(r.carol, 2, 0)
	membership(t, n, r.alice, r.roomID, r.carol.UserID, "leave")
	if c := countPrefix(t, n, kv.Key(core.TableUnread, r.carol.UserID)); c != 0 {
		t.Errorf("carol was kicked but has %d unread records", c)
	}
	r.say(r.alice, "bye")
	wantUnread(t, n, r.carol.UserID, r.roomID, 0, 0)
}

// TestUnreadReceiptKinds checks which receipts mark the room read: public
// and private read receipts, unthreaded or for the main timeline, and read
// markers; not a thread's receipt, nor the fully-read marker alone.
func TestUnreadReceiptKinds(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	n := newTestNode(t)
	r := newUnreadRoom(t, n)
	ids := []string{r.say(r.alice, "1"), r.say(r.alice, "2"), r.say(r.alice, "3"), r.say(r.alice, "4"), r.say(r.alice, "5")}
	r.want(r.bob, 5, 0)

	if err := n.SetReceipt(ctx, r.bob.UserID, r.roomID, ReceiptRead, ids[0], ids[0]); err != nil {
		t.Fatal(err)
	}
	r.want(r.bob, 5, 0) // a thread's receipt leaves the room's count alone
	if err := n.SetReadMarkers(ctx, r.bob.UserID, r.roomID, ids[4], "", ""); err != nil {
		t.Fatal(err)
	}
	r.want(r.bob, 5, 0) // so does the fully-read marker
	if err := n.SetReceipt(ctx, r.bob.UserID, r.roomID, ReceiptRead, ids[0], ThreadMain); err != nil {
		t.Fatal(err)
	}
	r.want(r.bob, 4, 0)
	if err := n.SetReceipt(ctx, r.bob.UserID, r.roomID, ReceiptReadPrivate, ids[2], ""); err != nil {
		t.Fatal(err)
	}
	r.want(r.bob, 2, 0)
	// A public receipt behind the private one counts from the private one.
	if err := n.SetReceipt(ctx, r.bob.UserID, r.roomID, ReceiptRead, ids[1], ""); err != nil {
		t.Fatal(err)
	}
	r.want(r.bob, 2, 0)
	if err := n.SetReadMarkers(ctx, r.bob.UserID, r.roomID, "", ids[4], ""); err != nil {
		t.Fatal(err)
	}
	r.want(r.bob, 0, 0)
	r.want(r.carol, 5, 0) // her receipts are her own
}

// TestUnreadInvite: an invite notifies its local invitee
// (.m.rule.invite_for_me); other events do not count for them until they
// join, and their join starts them from zero.
func TestUnreadInvite(t *testing.T) {
	t.Parallel()
	n := newTestNode(t)
	alice, dave := session(n, "alice"), session(n, "dave")
	roomID, err := n.CreateRoom(context.Background(), core.CreateRoomRequest{Creator: alice.UserID, Preset: core.PresetPrivateChat, Invite: []string{dave.UserID}})
	if err != nil {
		t.Fatal(err)
	}
	wantUnread(t, n, dave.UserID, roomID, 1, 0)
	send(t, n, alice, roomID, "not for invitees")
	wantUnread(t, n, dave.UserID, roomID, 1, 0)
	membership(t, n, dave, roomID, dave.UserID, spec.Join)
	wantUnread(t, n, dave.UserID, roomID, 0, 0)
	send(t, n, alice, roomID, "welcome")
	wantUnread(t, n, dave.UserID, roomID, 1, 0)
}

// TestUnreadBatch: the events of one batch are counted in order, so a
// user's own event in the middle resets what came before it only.
func TestUnreadBatch(t *testing.T) {
	t.Parallel()
	n := newTestNode(t)
	r := newUnreadRoom(t, n)
	msg := func(s Session, body string) core.SendRequest {
		c, _ := json.Marshal(map[string]string{"msgtype": "m.text", "body": body})
		return core.SendRequest{Sender: s.UserID, DeviceID: s.DeviceID, RoomID: r.roomID, Type: "m.room.message", Content: c}
	}
	sendBatches(t, n, r.roomID, 10, []core.SendRequest{
		msg(r.alice, "1"), msg(r.alice, "2"), msg(r.bob, "3"), msg(r.alice, "4 for bob"), msg(r.carol, "5"),
	})
	r.want(r.bob, 2, 1)
	r.want(r.carol, 0, 0)
	r.want(r.alice, 1, 0)
}

// TestUnreadRecountCap: a receipt far behind counts at most
// push.UnreadRecountCap events.
func TestUnreadRecountCap(t *testing.T) {
	t.Parallel()
	n := newTestNodeWith(t, func(c *core.Config) { c.NoSyncWrites = true })
	r := newUnreadRoom(t, n)
	first := r.say(r.alice, "first")
	reqs := make([]core.SendRequest, push.UnreadRecountCap+10)
	for i := range reqs {
		reqs[i] = core.SendRequest{Sender: r.alice.UserID, RoomID: r.roomID, Type: "m.room.message",
			Content: json.RawMessage(fmt.Sprintf(`{"msgtype":"m.text","body":"message %d"}`, i))}
	}
	sendBatches(t, n, r.roomID, 100, reqs)
	wantUnread(t, n, r.bob.UserID, r.roomID, len(reqs)+1, 0) // commits count every event
	if err := n.SetReceipt(context.Background(), r.bob.UserID, r.roomID, ReceiptRead, first, ""); err != nil {
		t.Fatal(err)
	}
	wantUnread(t, n, r.bob.UserID, r.roomID, push.UnreadRecountCap, 0)
}

// TestUnreadConcurrentReceipts: receipts racing with sends in the same
// room neither fail (the recount takes the room's lock, so it never loses a
// write conflict to a commit) nor lose counts.
func TestUnreadConcurrentReceipts(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	n := newTestNodeWith(t, func(c *core.Config) { c.NoSyncWrites = true })
	r := newUnreadRoom(t, n)
	ids := make(chan string, 200)
	errs := make(chan error, 2)
	go func() {
		defer close(ids)
		for i := range 200 {
			id, err := n.SendEvent(ctx, core.SendRequest{Sender: r.alice.UserID, RoomID: r.roomID, Type: "m.room.message",
				Content: json.RawMessage(fmt.Sprintf(`{"msgtype":"m.text","body":"m%d"}`, i))})
			if err != nil {
				errs <- err
				return
			}
			ids <- id
		}
		errs <- nil
	}()
	go func() {
		var err error
		for id := range ids {
			if err == nil {
				err = n.SetReceipt(ctx, r.bob.UserID, r.roomID, ReceiptRead, id, "")
			}
		}
		errs <- err // after the sender is done
	}()
	// Both goroutines end before the test can: the node closes after it.
	for _, err := range []error{<-errs, <-errs} {
		if err != nil {
			t.Fatal(err)
		}
	}
	r.want(r.bob, 0, 0) // his receipt is on the last message
	r.want(r.carol, 200, 0)
}

// TestUnreadRestart: counts are stored, so a restarted node still has them.
func TestUnreadRestart(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t.TempDir())
	n := openNode(t, cfg)
	r := newUnreadRoom(t, n)
	r.say(r.alice, "one")
	r.say(r.alice, "two, bob")
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	n = openNode(t, cfg)
	t.Cleanup(func() { n.Close() })
	wantUnread(t, n, r.bob.UserID, r.roomID, 2, 1)
	r.n = n
	r.say(r.alice, "three")
	r.want(r.bob, 3, 1)
}

// BenchmarkSendOneRoomReaders is BenchmarkSendOneRoom with ten other local
// users joined, so every send is counted for ten readers.
func BenchmarkSendOneRoomReaders(b *testing.B) {
	for _, mode := range syncModes {
		b.Run(mode.name, func(b *testing.B) { benchSendReaders(b, benchNode(b, mode.noSync)) })
	}
}

// benchSendReaders measures alice's sends into a room on n with ten other
// local members.
func benchSendReaders(b *testing.B, n *Node) {
	alice := session(n, "alice")
	roomID, err := n.CreateRoom(context.Background(), core.CreateRoomRequest{Creator: alice.UserID, Preset: core.PresetPublicChat})
	if err != nil {
		b.Fatal(err)
	}
	for i := range 10 {
		u := session(n, fmt.Sprintf("reader%d", i))
		membership(b, n, u, roomID, u.UserID, "join")
	}
	benchSends(b, n, alice, roomID)
}
