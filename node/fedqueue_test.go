package node

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/edgenode/edgenode/internal/identity"
	"github.com/edgenode/edgenode/node/core"
	"github.com/matrix-org/gomatrixserverlib"
	"github.com/matrix-org/gomatrixserverlib/spec"
)

// remoteServer is a key and key-derived name standing in for another node.
type remoteServer struct {
	name string
	key  ed25519.PrivateKey
}

func newRemoteServer(t testing.TB) remoteServer {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return remoteServer{name: identity.ServerNameForKey(pub), key: priv}
}

// buildAs builds a dag event signed by another server.
func (d *dagRoom) buildAs(r remoteServer, name string, e dagEvent) gomatrixserverlib.PDU {
	d.t.Helper()
	key, server := d.key, d.server
	d.key, d.server = r.key, r.name
	defer func() { d.key, d.server = key, server }()
	return d.build(name, e)
}

// roomWithRemoteMember makes a public room on n, created by the local
// @alice (power 100), which @x of the remote server has joined with a join
// event signed by that server, as it would arrive over federation. It
// returns the room and the remote user's ID.
func roomWithRemoteMember(t testing.TB, n *Node, r remoteServer) (*dagRoom, string) {
	t.Helper()
	d := newDAGRoom(t, n, gomatrixserverlib.RoomVersionV10)
	alice, x := d.user("alice"), "@x:"+r.name
	member := map[string]any{"membership": "join"}
	d.build("C", dagEvent{Sender: alice, Type: spec.MRoomCreate, StateKey: stateKey(""), Content: d.createContent(alice)})
	d.build("Ma", dagEvent{Sender: alice, Type: spec.MRoomMember, StateKey: &alice, Content: member,
		Prev: []string{"C"}, Auth: []string{"C"}})
	d.build("P", dagEvent{Sender: alice, Type: spec.MRoomPowerLevels, StateKey: stateKey(""),
		Content: powerLevels(map[string]int{alice: 100}), Prev: []string{"Ma"}, Auth: []string{"C", "Ma"}})
	d.build("J", dagEvent{Sender: alice, Type: spec.MRoomJoinRules, StateKey: stateKey(""),
		Content: map[string]any{"join_rule": "public"}, Prev: []string{"P"}, Auth: []string{"C", "Ma", "P"}})
	d.buildAs(r, "Mx", dagEvent{Sender: x, Type: spec.MRoomMember, StateKey: &x, Content: member,
		Prev: []string{"J"}, Auth: []string{"C", "J", "P"}})
	d.accept(n, "C", "Ma", "P", "J", "Mx")
	return d, x
}

func pendingIDs(t *testing.T, n *Node, dest string) []string {
	t.Helper()
	ids, evs, upTo, err := n.PendingPDUs(context.Background(), dest, 1000)
	if err != nil {
		t.Fatalf("PendingPDUs: %v", err)
	}
	if len(ids) != len(evs) || (len(ids) > 0) != (upTo > 0) {
		t.Fatalf("PendingPDUs: %d ids, %d events, upTo %d", len(ids), len(evs), upTo)
	}
	return ids
}

func TestFedQueueEnqueuedWithCommit(t *testing.T) {
	n := newTestNode(t)
	r := newRemoteServer(t)
	ctx := context.Background()
	var mu sync.Mutex
	var notified []string
	n.SetFederationNotify(func(dests []string) {
		mu.Lock()
		defer mu.Unlock()
		notified = append(notified, dests...)
	})
	d, _ := roomWithRemoteMember(t, n, r)

	servers, err := n.JoinedServers(ctx, d.roomID)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(servers)
	want := []string{n.ServerName(), r.name}
	slices.Sort(want)
	if !slices.Equal(servers, want) {
		t.Fatalf("joined servers %v, want %v", servers, want)
	}
	// The room's local events came before the remote join; the remote's own
	// join is not sent back to it.
	if got := pendingIDs(t, n, r.name); len(got) != 0 {
		t.Fatalf("queued before any local event after the join: %v", got)
	}

	alice := session(n, "alice")
	id1 := send(t, n, alice, d.roomID, "one")
	id2 := send(t, n, alice, d.roomID, "two")
	if got := pendingIDs(t, n, r.name); !slices.Equal(got, []string{id1, id2}) {
		t.Fatalf("queued %v, want %v", got, []string{id1, id2})
	}
	if got := pendingIDs(t, n, n.ServerName()); len(got) != 0 {
		t.Fatalf("queued for this server: %v", got)
	}
	mu.Lock()
	if !slices.Equal(notified, []string{r.name, r.name}) {
		t.Fatalf("notified %v", notified)
	}
	mu.Unlock()
	dests, err := n.Destinations(ctx)
	if err != nil || !slices.Equal(dests, []string{r.name}) {
		t.Fatalf("Destinations = %v, %v", dests, err)
	}

	// The queue entry's position is the event's stream position: written
	// by the same commit.
	_, _, upTo, err := n.PendingPDUs(ctx, r.name, 1)
	if err != nil || upTo != storedRecord(t, n, id1).Pos {
		t.Fatalf("upTo %d (%v), want position of %s = %d", upTo, err, id1, storedRecord(t, n, id1).Pos)
	}
	if err := n.ackPDUs(ctx, r.name, upTo); err != nil {
		t.Fatal(err)
	}
	if got := pendingIDs(t, n, r.name); !slices.Equal(got, []string{id2}) {
		t.Fatalf("after ack of the first: %v", got)
	}
	if err := n.ackPDUs(ctx, r.name, n.StreamPosition()); err != nil {
		t.Fatal(err)
	}
	if dests, _ := n.Destinations(ctx); len(dests) != 0 {
		t.Fatalf("Destinations after ack = %v", dests)
	}
	if c := countKeys(t, n, tFedQueue); c != 0 {
		t.Fatalf("%d queue keys left after ack", c)
	}
	// The queue, emptied, takes new work.
	id3 := send(t, n, alice, d.roomID, "three")
	if got := pendingIDs(t, n, r.name); !slices.Equal(got, []string{id3}) {
		t.Fatalf("queued after emptying %v, want %v", got, []string{id3})
	}
	if dests, _ := n.Destinations(ctx); !slices.Equal(dests, []string{r.name}) {
		t.Fatalf("Destinations = %v", dests)
	}
}

func TestFedQueueTransactionStableAcrossRestart(t *testing.T) {
	cfg := testConfig(t.TempDir())
	n := openNode(t, cfg)
	r := newRemoteServer(t)
	ctx := context.Background()
	d, _ := roomWithRemoteMember(t, n, r)
	alice := session(n, "alice")
	var ids []string
	for i := range 3 {
		ids = append(ids, send(t, n, alice, d.roomID, "m"+string(rune('0'+i))))
	}
	txn, err := n.NextTransaction(ctx, r.name, 2)
	if err != nil || txn == nil {
		t.Fatalf("NextTransaction = %v, %v", txn, err)
	}
	if !slices.Equal(txn.EventIDs, ids[:2]) || len(txn.PDUs) != 2 {
		t.Fatalf("txn carries %v, want %v", txn.EventIDs, ids[:2])
	}
	// More work arrives; the retry is still the same transaction.
	ids = append(ids, send(t, n, alice, d.roomID, "late"))
	again, err := n.NextTransaction(ctx, r.name, 50)
	if err != nil || again.TxnID != txn.TxnID || !slices.Equal(again.EventIDs, txn.EventIDs) || again.UpTo != txn.UpTo {
		t.Fatalf("retry = %+v, %v; want %+v", again, err, txn)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}

	n = openNode(t, cfg)
	defer n.Close()
	after, err := n.NextTransaction(ctx, r.name, 50)
	if err != nil || after.TxnID != txn.TxnID || !slices.Equal(after.EventIDs, txn.EventIDs) {
		t.Fatalf("after restart = %+v, %v; want %+v", after, err, txn)
	}
	if err := n.ackPDUs(ctx, r.name, after.UpTo); err != nil {
		t.Fatal(err)
	}
	next, err := n.NextTransaction(ctx, r.name, 50)
	if err != nil || next.TxnID == txn.TxnID || !slices.Equal(next.EventIDs, ids[2:]) {
		t.Fatalf("next = %+v, %v; want a new ID carrying %v", next, err, ids[2:])
	}
	if err := n.ackPDUs(ctx, r.name, next.UpTo); err != nil {
		t.Fatal(err)
	}
	if none, err := n.NextTransaction(ctx, r.name, 50); err != nil || none != nil {
		t.Fatalf("empty queue: %+v, %v", none, err)
	}
}

// TestFedQueueAckAndNext: acknowledging a transaction forms the next one in
// the same commit; it is in flight as if NextTransaction had formed it.
func TestFedQueueAckAndNext(t *testing.T) {
	n := newTestNode(t)
	r := newRemoteServer(t)
	ctx := context.Background()
	d, _ := roomWithRemoteMember(t, n, r)
	alice := session(n, "alice")
	var ids []string
	for i := range 3 {
		ids = append(ids, send(t, n, alice, d.roomID, fmt.Sprint("m", i)))
	}
	first, err := n.NextTransaction(ctx, r.name, 2)
	if err != nil || first == nil || !slices.Equal(first.EventIDs, ids[:2]) {
		t.Fatalf("first = %+v, %v", first, err)
	}
	second, err := n.AckAndNext(ctx, r.name, first, 2)
	if err != nil || second == nil || second.TxnID == first.TxnID || !slices.Equal(second.EventIDs, ids[2:]) {
		t.Fatalf("second = %+v, %v; want a new transaction carrying %v", second, err, ids[2:])
	}
	again, err := n.NextTransaction(ctx, r.name, 2)
	if err != nil || again == nil || again.TxnID != second.TxnID || !slices.Equal(again.EventIDs, second.EventIDs) {
		t.Fatalf("NextTransaction after AckAndNext = %+v, %v; want the one in flight, %+v", again, err, second)
	}
	last, err := n.AckAndNext(ctx, r.name, second, 2)
	if err != nil || last != nil {
		t.Fatalf("AckAndNext of the last = %+v, %v; want nil", last, err)
	}
	if none, err := n.NextTransaction(ctx, r.name, 2); err != nil || none != nil {
		t.Fatalf("empty queue: %+v, %v", none, err)
	}
}

// TestFedQueueTransactionByteBudget: 20 events of about 60 KiB go in
// transactions that each stay under the receiver's 1 MiB body limit (50 of
// them would be 3 MiB), in order, none lost.
func TestFedQueueTransactionByteBudget(t *testing.T) {
	n := newTestNode(t)
	r := newRemoteServer(t)
	ctx := context.Background()
	d, _ := roomWithRemoteMember(t, n, r)
	alice := session(n, "alice")
	big := strings.Repeat("x", 60<<10)
	var ids []string
	for i := range 20 {
		ids = append(ids, send(t, n, alice, d.roomID, fmt.Sprintf("%d %s", i, big)))
	}
	var got []string
	for range len(ids) {
		txn, err := n.NextTransaction(ctx, r.name, 50)
		if err != nil {
			t.Fatal(err)
		}
		if txn == nil {
			break
		}
		size := 0
		for _, p := range txn.PDUs {
			size += len(p)
		}
		if size > maxTxnPDUBytes || len(txn.PDUs) == 0 {
			t.Fatalf("transaction of %d PDUs, %d bytes: want 1 or more within %d", len(txn.PDUs), size, maxTxnPDUBytes)
		}
		got = append(got, txn.EventIDs...)
		if err := n.ackPDUs(ctx, r.name, txn.UpTo); err != nil {
			t.Fatal(err)
		}
	}
	if !slices.Equal(got, ids) {
		t.Fatalf("delivered %d events, want the %d sent, in order", len(got), len(ids))
	}
}

func TestFedQueueCapDropsOldest(t *testing.T) {
	n := newTestNode(t)
	n.setFedQueueCap(3)
	r := newRemoteServer(t)
	d, _ := roomWithRemoteMember(t, n, r)
	alice := session(n, "alice")
	var ids []string
	for i := range 5 {
		ids = append(ids, send(t, n, alice, d.roomID, "m"+string(rune('0'+i))))
	}
	if got := pendingIDs(t, n, r.name); !slices.Equal(got, ids[2:]) {
		t.Fatalf("queued %v, want the newest 3 %v", got, ids[2:])
	}
	// A batch bigger than the cap keeps its newest events.
	reqs := make([]core.SendRequest, 4)
	for i := range reqs {
		reqs[i] = core.SendRequest{Sender: alice.UserID, RoomID: d.roomID, Type: "m.room.message",
			Content: []byte(`{"msgtype":"m.text","body":"b"}`)}
	}
	batch := sendBatches(t, n, d.roomID, 4, reqs)
	if got := pendingIDs(t, n, r.name); !slices.Equal(got, batch[1:]) {
		t.Fatalf("queued %v, want %v", got, batch[1:])
	}
}

func TestFedQueueMembershipChanges(t *testing.T) {
	n := newTestNode(t)
	r := newRemoteServer(t)
	ctx := context.Background()
	d, x := roomWithRemoteMember(t, n, r)
	alice := session(n, "alice")

	// alice kicks x: the kick still goes to x's server, which was joined.
	kick := membership(t, n, alice, d.roomID, x, spec.Leave)
	if got := pendingIDs(t, n, r.name); !slices.Equal(got, []string{kick}) {
		t.Fatalf("queued %v, want the kick %s", got, kick)
	}
	servers, err := n.JoinedServers(ctx, d.roomID)
	if err != nil || !slices.Equal(servers, []string{n.ServerName()}) {
		t.Fatalf("joined servers after kick: %v, %v", servers, err)
	}
	// With no remote member left, nothing more is queued.
	send(t, n, alice, d.roomID, "alone")
	if got := pendingIDs(t, n, r.name); !slices.Equal(got, []string{kick}) {
		t.Fatalf("queued %v after the kick, want only the kick", got)
	}
}

// BenchmarkSendRemoteMember: one local message into a room with a remote
// member, so each commit also queues the event for that server (with the
// queue capped, as a peer that never comes back would leave it).
func BenchmarkSendRemoteMember(b *testing.B) {
	for _, mode := range syncModes {
		b.Run(mode.name, func(b *testing.B) {
			n := benchNode(b, mode.noSync)
			n.setFedQueueCap(1000)
			d, _ := roomWithRemoteMember(b, n, newRemoteServer(b))
			alice := session(n, "alice")
			benchSends(b, n, alice, d.roomID)
		})
	}
}
