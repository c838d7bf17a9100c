package node

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/edgenode/edgenode/kv"
	"github.com/edgenode/edgenode/node/core"
)

// inbox returns the bodies of everything in a device's inbox, oldest first.
func inbox(t testing.TB, n *Node, userID, deviceID string) []string {
	t.Helper()
	evs, _, err := n.ToDeviceSince(context.Background(), userID, deviceID, 0, 10000)
	if err != nil {
		t.Fatalf("inbox: %v", err)
	}
	out := []string{}
	for _, ev := range evs {
		var c struct{ Body string }
		if err := json.Unmarshal(ev.Content, &c); err != nil {
			t.Fatalf("content %s: %v", ev.Content, err)
		}
		out = append(out, c.Body)
	}
	return out
}

func body(s string) json.RawMessage { return json.RawMessage(fmt.Sprintf(`{"body":%q}`, s)) }

func TestSendToDevice(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	n := newTestNode(t)
	alice := e2eeUser(t, n, "alice", "A1")
	bob := e2eeUser(t, n, "bob", "B1")
	addDevice(t, n, bob.UserID, "B2")
	steps := []struct {
		name     string
		txnID    string
		messages map[string]map[string]json.RawMessage
		b1, b2   []string // each inbox afterwards
	}{
		{"to one device", "t1", map[string]map[string]json.RawMessage{bob.UserID: {"B1": body("one")}},
			[]string{"one"}, []string{}},
		{"to all devices", "t2", map[string]map[string]json.RawMessage{bob.UserID: {"*": body("all")}},
			[]string{"one", "all"}, []string{"all"}},
		{"retried transaction is not sent again", "t2", map[string]map[string]json.RawMessage{bob.UserID: {"*": body("all")}},
			[]string{"one", "all"}, []string{"all"}},
		{"unknown devices and remote users are skipped", "t3", map[string]map[string]json.RawMessage{
			bob.UserID: {"NOPE": body("x")}, "@carol:elsewhere": {"*": body("x")}},
			[]string{"one", "all"}, []string{"all"}},
		{"all devices and one by name", "t4", map[string]map[string]json.RawMessage{bob.UserID: {"*": body("star"), "B2": body("named")}},
			[]string{"one", "all", "star"}, []string{"all", "star", "named"}},
		{"no transaction ID: no idempotency", "", map[string]map[string]json.RawMessage{bob.UserID: {"B1": body("again")}},
			[]string{"one", "all", "star", "again"}, []string{"all", "star", "named"}},
		{"the same again", "", map[string]map[string]json.RawMessage{bob.UserID: {"B1": body("again")}},
			[]string{"one", "all", "star", "again", "again"}, []string{"all", "star", "named"}},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if err := n.SendToDevice(ctx, alice.UserID, "A1", "m.test", st.txnID, st.messages); err != nil {
				t.Fatal(err)
			}
			if got := inbox(t, n, bob.UserID, "B1"); fmt.Sprint(got) != fmt.Sprint(st.b1) {
				t.Errorf("B1 inbox %v, want %v", got, st.b1)
			}
			if got := inbox(t, n, bob.UserID, "B2"); fmt.Sprint(got) != fmt.Sprint(st.b2) {
				t.Errorf("B2 inbox %v, want %v", got, st.b2)
			}
		})
	}
	evs, _, _ := n.ToDeviceSince(ctx, bob.UserID, "B1", 0, 1)
	if len(evs) != 1 || evs[0].Sender != alice.UserID || evs[0].Type != "m.test" {
		t.Fatalf("event %+v", evs)
	}

	errTests := []struct {
		name     string
		evType   string
		messages map[string]map[string]json.RawMessage
		want     error
	}{
		{"no event type", "", map[string]map[string]json.RawMessage{bob.UserID: {"B1": body("x")}}, core.ErrInvalidParam},
		{"bad user ID", "m.test", map[string]map[string]json.RawMessage{"bob": {"B1": body("x")}}, core.ErrInvalidParam},
		{"content not an object", "m.test", map[string]map[string]json.RawMessage{bob.UserID: {"B1": json.RawMessage(`"x"`)}}, core.ErrBadInput},
	}
	for _, tc := range errTests {
		t.Run(tc.name, func(t *testing.T) {
			if err := n.SendToDevice(ctx, alice.UserID, "A1", tc.evType, "e-"+tc.name, tc.messages); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestToDeviceAck(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	n := newTestNode(t)
	alice := e2eeUser(t, n, "alice", "A1")
	bob := e2eeUser(t, n, "bob", "B1")
	for i := range 3 {
		msg := map[string]map[string]json.RawMessage{bob.UserID: {"B1": body(fmt.Sprint(i))}}
		if err := n.SendToDevice(ctx, alice.UserID, "A1", "m.test", fmt.Sprint("t", i), msg); err != nil {
			t.Fatal(err)
		}
	}
	first, upTo, err := n.ToDeviceSince(ctx, bob.UserID, "B1", 0, 2)
	if err != nil || len(first) != 2 || upTo == 0 || upTo > n.ToDevicePosition() {
		t.Fatalf("first page: %d events up to %d (position %d), %v", len(first), upTo, n.ToDevicePosition(), err)
	}
	// A client that never came back with a later since gets the same again.
	if again, upTo2, _ := n.ToDeviceSince(ctx, bob.UserID, "B1", 0, 2); len(again) != 2 || upTo2 != upTo {
		t.Fatalf("unacknowledged messages changed: %d up to %d", len(again), upTo2)
	}
	rest, last, _ := n.ToDeviceSince(ctx, bob.UserID, "B1", upTo, 0)
	if len(rest) != 1 || last != n.ToDevicePosition() {
		t.Fatalf("after %d: %d events up to %d", upTo, len(rest), last)
	}
	if none, same, _ := n.ToDeviceSince(ctx, bob.UserID, "B1", last, 0); len(none) != 0 || same != last {
		t.Fatalf("past the end: %d events, upTo %d, want none and %d", len(none), same, last)
	}

	steps := []struct {
		name  string
		ackTo uint64
		want  []string
		count uint64
	}{
		{"ack of nothing keeps everything", 0, []string{"0", "1", "2"}, 3},
		{"ack of the first page", upTo, []string{"2"}, 1},
		{"ack again is harmless", upTo, []string{"2"}, 1},
		{"ack of all", last, []string{}, 0},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if err := n.AckToDevice(ctx, bob.UserID, "B1", st.ackTo); err != nil {
				t.Fatal(err)
			}
			if got := inbox(t, n, bob.UserID, "B1"); fmt.Sprint(got) != fmt.Sprint(st.want) {
				t.Fatalf("inbox %v, want %v", got, st.want)
			}
			if c := inboxCountOf(t, n, bob.UserID, "B1"); c != st.count {
				t.Fatalf("count %d, want %d", c, st.count)
			}
		})
	}
	if countKeys(t, n, tToDeviceCount) != 0 {
		t.Fatal("an empty inbox keeps its count key")
	}
}

func inboxCountOf(t testing.TB, n *Node, userID, deviceID string) uint64 {
	t.Helper()
	var c uint64
	err := n.DB.View(func(tx *kv.Txn) error {
		b, err := tx.Get(toDeviceCountKey(userID, deviceID))
		if errors.Is(err, kv.ErrNotFound) {
			return nil
		}
		if err == nil && len(b) != 8 {
			err = fmt.Errorf("bad inbox count %x", b)
		}
		if err == nil {
			c = binary.BigEndian.Uint64(b)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestToDeviceDeletedWithDevice(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	n := newTestNode(t)
	alice := e2eeUser(t, n, "alice", "A1")
	bob := e2eeUser(t, n, "bob", "B1")
	addDevice(t, n, bob.UserID, "B2")
	msg := map[string]map[string]json.RawMessage{bob.UserID: {"*": body("hi")}}
	if err := n.SendToDevice(ctx, alice.UserID, "A1", "m.test", "t1", msg); err != nil {
		t.Fatal(err)
	}
	if err := n.SendToDevice(ctx, bob.UserID, "B2", "m.test", "t1", map[string]map[string]json.RawMessage{alice.UserID: {"A1": body("x")}}); err != nil {
		t.Fatal(err)
	}
	if err := n.DeleteDevice(ctx, bob.UserID, "B2"); err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name   string
		prefix []byte
		want   int
	}{
		{"deleted device's inbox", toDevicePrefix(bob.UserID, "B2"), 0},
		{"deleted device's count", toDeviceCountKey(bob.UserID, "B2"), 0},
		{"deleted device's transaction IDs", toDeviceTxnKey(bob.UserID, "B2"), 0},
		{"other device's inbox", toDevicePrefix(bob.UserID, "B1"), 1},
		{"recipient of the deleted device's message", toDevicePrefix(alice.UserID, "A1"), 1},
	}
	for _, c := range checks {
		if got := countPrefix(t, n, c.prefix); got != c.want {
			t.Errorf("%s: %d keys, want %d", c.name, got, c.want)
		}
	}
	// A device logged in again under the deleted one's ID starts empty.
	addDevice(t, n, bob.UserID, "B2")
	if got := inbox(t, n, bob.UserID, "B2"); len(got) != 0 {
		t.Fatalf("new device inherited %v", got)
	}
}

func TestSendToDeviceWakesRecipients(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	n := newTestNode(t)
	alice := e2eeUser(t, n, "alice", "A1")
	bob := e2eeUser(t, n, "bob", "B1")
	carol := e2eeUser(t, n, "carol", "C1")
	lb, lc := n.Listen(bob.UserID), n.Listen(carol.UserID)
	defer lb.Close()
	defer lc.Close()
	if err := n.SendToDevice(ctx, alice.UserID, "A1", "m.test", "t1", map[string]map[string]json.RawMessage{bob.UserID: {"*": body("hi")}}); err != nil {
		t.Fatal(err)
	}
	if !wakes(lb, 30*time.Second) {
		t.Fatal("bob was not woken by a to-device message")
	}
	if wakes(lc, 50*time.Millisecond) {
		t.Fatal("carol was woken by a message for bob")
	}
}
