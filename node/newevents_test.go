package node

import (
	"context"
	"encoding/json"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgenode/edgenode/node/core"
	"github.com/edgenode/edgenode/node/push"
)

// eventLog collects what the new-event handler hears.
type eventLog struct {
	mu  sync.Mutex
	got []push.NewEvent
	ch  chan struct{}
}

func newEventLog() *eventLog { return &eventLog{ch: make(chan struct{}, 1)} }

func (l *eventLog) handle(ev push.NewEvent) {
	l.mu.Lock()
	l.got = append(l.got, ev)
	l.mu.Unlock()
	select {
	case l.ch <- struct{}{}:
	default:
	}
}

// wait returns the events heard once pred holds for them, failing the test
// after a generous bound.
func (l *eventLog) wait(t *testing.T, pred func([]push.NewEvent) bool) []push.NewEvent {
	t.Helper()
	deadline := time.NewTimer(30 * time.Second)
	defer deadline.Stop()
	for {
		l.mu.Lock()
		got := append([]push.NewEvent(nil), l.got...)
		l.mu.Unlock()
		if pred(got) {
			return got
		}
		select {
		case <-l.ch:
		case <-deadline.C:
			t.Fatalf("new events: condition not met; heard %+v", got)
		}
	}
}

func findEvent(evs []push.NewEvent, userID, eventID string) (push.NewEvent, bool) {
	for _, ev := range evs {
		if ev.UserID == userID && ev.EventID == eventID {
			return ev, true
		}
	}
	return push.NewEvent{}, false
}

// TestNewEventsPushRules: the handler hears of others' events for each
// local member, with the push rules' verdict (a message notifies, a notice
// does not, a mention highlights), an invite for its invitee, and never a
// user's own event.
func TestNewEventsPushRules(t *testing.T) {
	n := newTestNodeWith(t, func(c *core.Config) { c.NoSyncWrites = true })
	log := newEventLog()
	n.SetNewEventHandler(log.handle)
	alice, bob, roomID := publicRoom(t, n, "")
	carol := session(n, "carol")

	msg := send(t, n, alice, roomID, "hello")
	own := send(t, n, bob, roomID, "my own")
	c, _ := json.Marshal(map[string]any{"msgtype": "m.notice", "body": "a bot says"})
	notice, err := n.SendEvent(context.Background(), core.SendRequest{Sender: alice.UserID, DeviceID: alice.DeviceID, RoomID: roomID, Type: "m.room.message", Content: c})
	if err != nil {
		t.Fatal(err)
	}
	c, _ = json.Marshal(map[string]any{"msgtype": "m.text", "body": "hey", "m.mentions": map[string]any{"user_ids": []string{bob.UserID}}})
	mention, err := n.SendEvent(context.Background(), core.SendRequest{Sender: alice.UserID, DeviceID: alice.DeviceID, RoomID: roomID, Type: "m.room.message", Content: c})
	if err != nil {
		t.Fatal(err)
	}
	invite := membership(t, n, alice, roomID, carol.UserID, "invite")

	got := log.wait(t, func(evs []push.NewEvent) bool { _, ok := findEvent(evs, carol.UserID, invite); return ok })
	for _, tc := range []struct {
		name, user, event string
		notify, highlight bool
	}{
		{"message", bob.UserID, msg, true, false},
		{"notice", bob.UserID, notice, false, false},
		{"mention", bob.UserID, mention, true, true},
		{"invite", carol.UserID, invite, true, false},
		{"own event, seen by the other member", alice.UserID, own, true, false},
	} {
		ev, ok := findEvent(got, tc.user, tc.event)
		if !ok {
			t.Errorf("%s: not heard for %s", tc.name, tc.user)
			continue
		}
		if ev.Notify != tc.notify || ev.Highlight != tc.highlight || ev.RoomID != roomID {
			t.Errorf("%s: %+v, want notify %v highlight %v in %s", tc.name, ev, tc.notify, tc.highlight, roomID)
		}
	}
	for _, ev := range got {
		if ev.UserID == ev.Sender {
			t.Errorf("a user heard of their own event: %+v", ev)
		}
		if ev.UserID == carol.UserID && ev.EventID != invite {
			t.Errorf("carol, only invited, heard of %+v", ev)
		}
	}
}

// TestNewEventsSlowHandler: a handler that does not return does not slow
// room input: sends complete, the events beyond the queue are dropped and
// counted, and once the handler returns it hears what was queued.
func TestNewEventsSlowHandler(t *testing.T) {
	n := newTestNodeWith(t, func(c *core.Config) { c.NoSyncWrites = true })
	release := make(chan struct{})
	var once sync.Once
	heard := make(chan push.NewEvent, 4*push.NewEventQueue)
	n.SetNewEventHandler(func(ev push.NewEvent) {
		once.Do(func() { <-release })
		heard <- ev
	})
	alice, _, roomID := publicRoom(t, n, "")
	const sends = push.NewEventQueue + 50
	start := time.Now()
	for i := range sends {
		send(t, n, alice, roomID, "m"+string(rune('a'+i%26)))
	}
	elapsed := time.Since(start)
	dropped := n.NewEventsDropped()
	if dropped == 0 {
		t.Fatalf("%d sends with the handler stuck: nothing dropped", sends)
	}
	close(release)
	// What was not dropped is heard: sends minus dropped (bob's events).
	want := int(sends - dropped)
	deadline := time.After(30 * time.Second)
	for got := 0; got < want; got++ {
		select {
		case <-heard:
		case <-deadline:
			t.Fatalf("heard %d of %d queued events (dropped %d)", got, want, dropped)
		}
	}
	t.Logf("%d sends in %v with the handler stuck; %d dropped", sends, elapsed, dropped)
}

// BenchmarkSendOneRoomReadersHooked is BenchmarkSendOneRoomReaders with a
// new-event handler set (what the mobile facade does when the app has an
// EventListener): each send is also decided, off the commit, for ten
// readers. The handler counts; the dropped events are reported.
func BenchmarkSendOneRoomReadersHooked(b *testing.B) {
	n := benchNode(b, true)
	var heard atomic.Int64
	n.SetNewEventHandler(func(push.NewEvent) { heard.Add(1) })
	benchSendReaders(b, n)
	b.ReportMetric(float64(n.NewEventsDropped())/float64(b.N), "dropped/op")
}
