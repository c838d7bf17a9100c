package node

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"testing"

	"github.com/edgenode/edgenode/node/core"
)

// receiptsOf decodes ReceiptsSince's content for one room into a set of
// "type event user thread" strings.
func receiptsOf(t testing.TB, raw json.RawMessage) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	if raw == nil {
		return out
	}
	var c map[string]map[string]map[string]struct {
		TS       int64  `json:"ts"`
		ThreadID string `json:"thread_id"`
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatalf("m.receipt content %s: %v", raw, err)
	}
	for ev, byType := range c {
		for typ, byUser := range byType {
			for u, r := range byUser {
				if r.TS == 0 {
					t.Errorf("receipt %s %s %s has no ts", typ, ev, u)
				}
				out[typ+" "+ev+" "+u+" "+r.ThreadID] = true
			}
		}
	}
	return out
}

func sameSet(a, b map[string]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}

func stringSet(items ...string) map[string]bool {
	m := map[string]bool{}
	for _, s := range items {
		m[s] = true
	}
	return m
}

func TestReceipts(t *testing.T) {
	ctx := context.Background()
	n := fastNode(t)
	alice, bob, carol := session(n, "alice"), session(n, "bob"), session(n, "carol")
	room := sharedRoom(t, n, alice, bob)
	other := sharedRoom(t, n, carol, alice)
	e1, e2, e3 := send(t, n, alice, room, "one"), send(t, n, bob, room, "two"), send(t, n, alice, room, "three")
	o1 := send(t, n, carol, other, "elsewhere")
	a, b := alice.UserID, bob.UserID

	// Each step sets one receipt, then says who must be woken and whether
	// a position is taken.
	steps := []struct {
		name             string
		user             Session
		room, typ, event string
		thread           string
		woken            []Session
		moves            bool
	}{
		{"public receipt wakes the room's members", alice, room, ReceiptRead, e1, "", []Session{alice, bob}, true},
		{"private receipt wakes only its user", alice, room, ReceiptReadPrivate, e2, "", []Session{alice}, true},
		{"bob reads", bob, room, ReceiptRead, e2, "", []Session{alice, bob}, true},
		{"moving forward replaces", alice, room, ReceiptRead, e3, "", []Session{alice, bob}, true},
		{"moving backwards is ignored", alice, room, ReceiptRead, e1, "", nil, false},
		{"the same receipt again is ignored", alice, room, ReceiptRead, e3, "", nil, false},
		{"a threaded receipt is its own", alice, room, ReceiptRead, e2, ThreadMain, []Session{alice, bob}, true},
		{"in another room", alice, other, ReceiptRead, o1, "", []Session{alice, carol}, true},
	}
	var positions []uint64
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			before := n.ReceiptPosition()
			ls := listeners(t, n, alice, bob, carol)
			if err := n.SetReceipt(ctx, st.user.UserID, st.room, st.typ, st.event, st.thread); err != nil {
				t.Fatal(err)
			}
			if moved := n.ReceiptPosition() != before; moved != st.moves {
				t.Errorf("position moved: %v, want %v", moved, st.moves)
			}
			checkWoken(t, ls, st.woken...)
			positions = append(positions, n.ReceiptPosition())
		})
	}
	last := n.ReceiptPosition()

	since := []struct {
		name     string
		forUser  string
		rooms    []string
		from, to uint64
		want     map[string]bool
	}{
		{"bob sees public receipts only, latest per user", b, []string{room}, 0, last,
			stringSet("m.read "+e3+" "+a+" ", "m.read "+e2+" "+b+" ", "m.read "+e2+" "+a+" main")},
		{"alice also sees her private receipt", a, []string{room}, 0, last,
			stringSet("m.read "+e3+" "+a+" ", "m.read "+e2+" "+b+" ", "m.read "+e2+" "+a+" main", "m.read.private "+e2+" "+a+" ")},
		{"from is exclusive, to inclusive", a, []string{room}, positions[1], positions[3],
			stringSet("m.read "+e2+" "+b+" ", "m.read "+e3+" "+a+" ")},
		{"one position", b, []string{room}, positions[2], positions[3], stringSet("m.read " + e3 + " " + a + " ")},
		{"a receipt replaced after to waits for the next call", b, []string{room}, 0, positions[0], stringSet()},
		{"initial sync up to an earlier to", b, []string{room}, 0, positions[2], stringSet("m.read " + e2 + " " + b + " ")},
		{"only the rooms asked for", a, []string{room}, positions[6], last, stringSet()},
		{"the other room", a, []string{other}, positions[6], last, stringSet("m.read " + o1 + " " + a + " ")},
		{"empty range", a, []string{room, other}, last, last, stringSet()},
	}
	for _, tc := range since {
		t.Run(tc.name, func(t *testing.T) {
			got, err := n.ReceiptsSince(ctx, tc.forUser, tc.rooms, tc.from, tc.to)
			if err != nil {
				t.Fatal(err)
			}
			all := map[string]bool{}
			for roomID, raw := range got {
				if !slices.Contains(tc.rooms, roomID) {
					t.Errorf("room %s not asked for", roomID)
				}
				for k := range receiptsOf(t, raw) {
					all[k] = true
				}
			}
			if !sameSet(all, tc.want) {
				t.Errorf("got %v\nwant %v", all, tc.want)
			}
		})
	}
	t.Run("superseded index entries are deleted", func(t *testing.T) {
		// alice: m.read, m.read.private, threaded m.read in room, m.read in
		// other; bob: m.read.
		if c := countKeys(t, n, tReceiptStream); c != 5 {
			t.Errorf("%d index entries for 5 receipts", c)
		}
	})
}

func TestReceiptInvalid(t *testing.T) {
	ctx := context.Background()
	n := fastNode(t)
	alice, bob, carol := session(n, "alice"), session(n, "bob"), session(n, "carol")
	room := sharedRoom(t, n, alice, bob)
	other := sharedRoom(t, n, carol)
	root := send(t, n, alice, room, "root")
	inThread := func(rootID string) string {
		c, _ := json.Marshal(map[string]any{"msgtype": "m.text", "body": "reply",
			"m.relates_to": map[string]any{"rel_type": "m.thread", "event_id": rootID}})
		id, err := n.SendEvent(ctx, core.SendRequest{Sender: alice.UserID, RoomID: room, Type: "m.room.message", Content: c})
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	reply := inThread(root)
	otherRoot := send(t, n, alice, room, "another root")
	elsewhere := send(t, n, carol, other, "hi")

	tests := []struct {
		name                       string
		user                       Session
		room, typ, event, threadID string
		want                       error
	}{
		{"not joined", carol, room, ReceiptRead, root, "", core.ErrNotJoined},
		{"unknown room", alice, "!nope:" + n.ServerName(), ReceiptRead, root, "", core.ErrNotFound},
		{"unknown event", alice, room, ReceiptRead, "$nope", "", core.ErrNotFound},
		{"event of another room", alice, room, ReceiptRead, elsewhere, "", core.ErrNotFound},
		{"unknown type", alice, room, "m.unread", root, "", core.ErrInvalidParam},
		{"fully_read is not a receipt", alice, room, ReceiptFullyRead, root, "", core.ErrInvalidParam},
		{"thread ID neither main nor an event ID", alice, room, ReceiptRead, root, "thread", core.ErrInvalidParam},
		{"event in another thread", alice, room, ReceiptRead, reply, otherRoot, core.ErrInvalidParam},
		{"event in its thread", alice, room, ReceiptRead, reply, root, nil},
		{"thread root under its own thread", bob, room, ReceiptRead, root, root, nil},
		{"private, threaded", bob, room, ReceiptReadPrivate, reply, root, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := n.SetReceipt(ctx, tc.user.UserID, tc.room, tc.typ, tc.event, tc.threadID)
			if !errors.Is(err, tc.want) {
				t.Errorf("got %v, want %v", err, tc.want)
			}
		})
	}
	if p := n.ReceiptPosition(); p != 3 {
		t.Errorf("position %d after 3 valid receipts", p)
	}
}

func TestReadMarkers(t *testing.T) {
	ctx := context.Background()
	n := fastNode(t)
	alice, bob := session(n, "alice"), session(n, "bob")
	room := sharedRoom(t, n, alice, bob)
	e1, e2 := send(t, n, bob, room, "one"), send(t, n, bob, room, "two")
	fullyRead := func() string {
		t.Helper()
		raw, err := n.AccountData(ctx, alice.UserID, room, AccountDataFullyRead)
		if errors.Is(err, core.ErrNotFound) {
			return ""
		}
		if err != nil {
			t.Fatal(err)
		}
		var c struct {
			EventID string `json:"event_id"`
		}
		if err := json.Unmarshal(raw, &c); err != nil {
			t.Fatal(err)
		}
		return c.EventID
	}
	receipts := func() map[string]bool {
		got, err := n.ReceiptsSince(ctx, alice.UserID, []string{room}, 0, n.ReceiptPosition())
		if err != nil {
			t.Fatal(err)
		}
		return receiptsOf(t, got[room])
	}
	a := alice.UserID
	steps := []struct {
		name                         string
		fullyRead, read, readPrivate string
		wantErr                      error
		wantMarker                   string
		wantReceipts                 map[string]bool
	}{
		{"nothing", "", "", "", nil, "", stringSet()},
		{"marker only", e1, "", "", nil, e1, stringSet()},
		{"all three", e2, e1, e2, nil, e2, stringSet("m.read "+e1+" "+a+" ", "m.read.private "+e2+" "+a+" ")},
		{"the marker does not move back", e1, "", "", nil, e2, stringSet("m.read "+e1+" "+a+" ", "m.read.private "+e2+" "+a+" ")},
		{"a bad event changes nothing", e2, "$missing", "", core.ErrNotFound, e2, stringSet("m.read "+e1+" "+a+" ", "m.read.private "+e2+" "+a+" ")},
		{"read moves on", "", e2, "", nil, e2, stringSet("m.read "+e2+" "+a+" ", "m.read.private "+e2+" "+a+" ")},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			err := n.SetReadMarkers(ctx, alice.UserID, room, st.fullyRead, st.read, st.readPrivate)
			if !errors.Is(err, st.wantErr) {
				t.Fatalf("got %v, want %v", err, st.wantErr)
			}
			if got := fullyRead(); got != st.wantMarker {
				t.Errorf("m.fully_read %q, want %q", got, st.wantMarker)
			}
			if got := receipts(); !sameSet(got, st.wantReceipts) {
				t.Errorf("receipts %v, want %v", got, st.wantReceipts)
			}
		})
	}
	t.Run("the marker wakes only its user", func(t *testing.T) {
		e3 := send(t, n, bob, room, "three")
		ls := listeners(t, n, alice, bob)
		if err := n.SetReadMarkers(ctx, alice.UserID, room, e3, "", ""); err != nil {
			t.Fatal(err)
		}
		checkWoken(t, ls, alice)
	})
}
