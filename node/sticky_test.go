package node

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/edgenode/edgenode/internal/identity"
	"github.com/edgenode/edgenode/node/core"
	"github.com/matrix-org/gomatrixserverlib"
	"github.com/tidwall/gjson"
)

// sendSticky sends a sticky message and returns its ID.
func sendSticky(t testing.TB, n *Node, s Session, roomID, body string, durationMS int64) string {
	t.Helper()
	c, _ := json.Marshal(map[string]string{"msgtype": "m.text", "body": body})
	id, err := n.SendEvent(context.Background(), core.SendRequest{
		Sender: s.UserID, DeviceID: s.DeviceID, RoomID: roomID, Type: "m.room.message", Content: c,
		StickyDurationMS: &durationMS,
	})
	if err != nil {
		t.Fatalf("send sticky %q: %v", body, err)
	}
	return id
}

// TestStickyEventSigned: a sticky event carries msc4354_sticky, its content
// hash and signature are right (an untrusted parse does not redact it), its
// ID is derived from its final JSON, and redaction strips the key.
func TestStickyEventSigned(t *testing.T) {
	n := fastNode(t)
	alice := session(n, "alice")
	room := sharedRoom(t, n, alice)
	id := sendSticky(t, n, alice, room, "hello", 300000)
	rec := storedRecord(t, n, id)
	raw, version := []byte(rec.JSON), gomatrixserverlib.RoomVersion(rec.Version)
	if got := gjson.GetBytes(raw, "msc4354_sticky.duration_ms").Int(); got != 300000 {
		t.Fatalf("stored event has msc4354_sticky.duration_ms %d: %s", got, raw)
	}
	verImpl, err := gomatrixserverlib.GetRoomVersion(version)
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := verImpl.NewEventFromUntrustedJSON(raw)
	if err != nil {
		t.Fatal(err)
	}
	if parsed.EventID() != id {
		t.Errorf("event ID from the JSON %s, stored as %s", parsed.EventID(), id)
	}
	if !gjson.GetBytes(parsed.JSON(), "msc4354_sticky").Exists() {
		t.Fatalf("untrusted parse redacted the event (bad content hash): %s", parsed.JSON())
	}
	redacted, err := verImpl.RedactEventJSON(raw)
	if err != nil {
		t.Fatal(err)
	}
	if gjson.GetBytes(redacted, "msc4354_sticky").Exists() {
		t.Errorf("redaction keeps msc4354_sticky: %s", redacted)
	}
	err = gomatrixserverlib.VerifyJSON(n.ServerName(), identity.KeyID, n.PublicKey(), redacted)
	if err != nil {
		t.Errorf("signature: %v", err)
	}
	if _, ok := core.StickyEndOf(parsed, time.Now().UnixMilli()); !ok {
		t.Error("stickyEndOf: not sticky")
	}
}

// TestStickySendInvalid: a duration out of range is ErrInvalidParam and
// stores nothing.
func TestStickySendInvalid(t *testing.T) {
	n := fastNode(t)
	alice := session(n, "alice")
	room := sharedRoom(t, n, alice)
	for _, d := range []int64{-1, core.MaxStickyDurationMS + 1} {
		_, err := n.SendEvent(context.Background(), core.SendRequest{
			Sender: alice.UserID, RoomID: room, Type: "m.room.message", Content: json.RawMessage(`{}`), StickyDurationMS: &d,
		})
		if !errors.Is(err, core.ErrInvalidParam) {
			t.Errorf("duration %d: err = %v, want ErrInvalidParam", d, err)
		}
	}
}

// stickyClock is a fake clock a day ahead of real time, so the node's own
// sweeper (on real time) leaves the test's entries alone.
func stickyClock(n *Node) *fakeClock {
	c := &fakeClock{t: time.Now().Add(24 * time.Hour).Truncate(time.Millisecond)}
	n.Now = c.now
	return c
}

// TestStickyIndexAndSweep: sticky events are indexed with their ends, a
// joiner gets a backlog, StickyEvents drops expired ones, and the sweep
// deletes every index entry once expired, so nothing keeps growing.
func TestStickyIndexAndSweep(t *testing.T) {
	ctx := context.Background()
	n := fastNode(t)
	clock := stickyClock(n)
	alice, bob := session(n, "alice"), session(n, "bob")
	room := sharedRoom(t, n, alice)
	short := sendSticky(t, n, alice, room, "short", 60_000)
	long := sendSticky(t, n, alice, room, "long", 600_000)
	sendSticky(t, n, alice, room, "zero", 0) // expired at once: never indexed
	send(t, n, alice, room, "plain")
	membership(t, n, bob, room, bob.UserID, "join")

	if got := countPrefix(t, n, stickyRoomPrefix(room)); got != 2 {
		t.Errorf("room index has %d entries, want 2", got)
	}
	if got := countPrefix(t, n, stickyUserPrefix(bob.UserID)); got != 1 {
		t.Errorf("bob has %d backlog entries, want 1 (for two events)", got)
	}
	query := func() []string {
		evs, next, err := n.StickyEvents(ctx, StickyQuery{UserID: bob.UserID, Rooms: []string{room}, Upto: n.StreamPosition()})
		if err != nil {
			t.Fatal(err)
		}
		if next != n.StreamPosition() {
			t.Errorf("cursor %d, want %d", next, n.StreamPosition())
		}
		var ids []string
		for _, ev := range evs {
			ids = append(ids, ev.PDU.EventID())
		}
		return ids
	}
	if got := query(); strings.Join(got, ",") != short+","+long {
		t.Errorf("bob's sticky events %v, want [%s %s]", got, short, long)
	}

	clock.advance(2 * time.Minute)
	if got := query(); strings.Join(got, ",") != long {
		t.Errorf("after 2 min: %v, want [%s]", got, long)
	}
	swept, next, err := n.sweepSticky(clock.now().UnixMilli(), 1000)
	if err != nil || swept != 1 || next == 0 {
		t.Errorf("sweep: %d swept, next %d, %v; want 1 (short's room entry; the backlog lives as long as long), a next end", swept, next, err)
	}
	clock.advance(time.Hour)
	if _, _, err := n.sweepSticky(clock.now().UnixMilli(), 1000); err != nil {
		t.Fatal(err)
	}
	for _, table := range []string{tSticky, tStickyUser, tStickyExpiry} {
		if got := countKeys(t, n, table); got != 0 {
			t.Errorf("%s has %d entries after everything expired", table, got)
		}
	}
	if got := query(); len(got) != 0 {
		t.Errorf("expired events returned: %v", got)
	}
}

// TestStickySweepBounded: one sweep deletes at most its limit.
func TestStickySweepBounded(t *testing.T) {
	n := fastNode(t)
	clock := stickyClock(n)
	alice := session(n, "alice")
	room := sharedRoom(t, n, alice)
	for range 5 {
		sendSticky(t, n, alice, room, "s", 1000)
	}
	clock.advance(time.Minute)
	for _, want := range []int{2, 2, 1, 0} {
		swept, _, err := n.sweepSticky(clock.now().UnixMilli(), 2)
		if err != nil || swept != want {
			t.Fatalf("sweep: %d, %v; want %d", swept, err, want)
		}
	}
}

// TestStickyRedactedNotSticky: a redacted sticky event is an ordinary event.
func TestStickyRedactedNotSticky(t *testing.T) {
	ctx := context.Background()
	n := fastNode(t)
	alice := session(n, "alice")
	room := sharedRoom(t, n, alice)
	id := sendSticky(t, n, alice, room, "x", 300000)
	if _, err := n.Redact(ctx, core.RedactRequest{Sender: alice.UserID, DeviceID: alice.DeviceID, RoomID: room, EventID: id}); err != nil {
		t.Fatal(err)
	}
	evs, _, err := n.StickyEvents(ctx, StickyQuery{UserID: alice.UserID, Rooms: []string{room}, Upto: n.StreamPosition()})
	if err != nil || len(evs) != 0 {
		t.Errorf("redacted sticky event still returned: %d, %v", len(evs), err)
	}
	if info := core.StickyInfo(mustPDU(t, n, id)); info != nil {
		t.Errorf("redacted event still has sticky info %s", info)
	}
}

func mustPDU(t testing.TB, n *Node, id string) gomatrixserverlib.PDU {
	t.Helper()
	evs, err := n.Events(context.Background(), []string{id})
	if err != nil || len(evs) != 1 {
		t.Fatalf("event %s: %v", id, err)
	}
	return evs[0].PDU
}
