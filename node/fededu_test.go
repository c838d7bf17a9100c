package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/edgenode/edgenode/kv"
	"github.com/edgenode/edgenode/node/core"
)

// drainTxn sends nothing: it takes dest's next transaction and acks it,
// returning it (nil if nothing is queued).
func drainTxn(t *testing.T, n *Node, dest string) *OutboundTxn {
	t.Helper()
	ctx := context.Background()
	txn, err := n.NextTransaction(ctx, dest, 50)
	if err != nil {
		t.Fatalf("NextTransaction: %v", err)
	}
	if txn != nil {
		if err := n.ackTransaction(ctx, dest, txn); err != nil {
			t.Fatalf("ackTransaction: %v", err)
		}
	}
	return txn
}

// edusOf returns a transaction's EDUs of one type, decoded.
func edusOf(t *testing.T, txn *OutboundTxn, eduType string) []map[string]any {
	t.Helper()
	var out []map[string]any
	if txn == nil {
		return nil
	}
	for _, e := range txn.EDUs {
		if e.Type != eduType {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(e.Content, &m); err != nil {
			t.Fatalf("%s content %s: %v", eduType, e.Content, err)
		}
		out = append(out, m)
	}
	return out
}

// TestEDUQueueOutbound: local typing, receipts, presence, to-device and
// device-list changes are queued for the remote server in the room, typing
// coalesced to its latest state; an in-flight transaction keeps its EDUs
// while newer ones queue behind it.
func TestEDUQueueOutbound(t *testing.T) {
	n := newTestNode(t)
	r := newRemoteServer(t)
	ctx := context.Background()
	d, x := roomWithRemoteMember(t, n, r)
	alice := d.user("alice")
	drainTxn(t, n, r.name) // the room's own events

	// Typing on then off before anything is sent: only "off" goes.
	if err := n.SetTyping(ctx, alice, d.roomID, true, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := n.SetTyping(ctx, alice, d.roomID, false, 0); err != nil {
		t.Fatal(err)
	}
	dests, err := n.Destinations(ctx)
	if err != nil || !slices.Contains(dests, r.name) {
		t.Fatalf("Destinations = %v, %v; want %s", dests, err, r.name)
	}
	txn, err := n.NextTransaction(ctx, r.name, 50)
	if err != nil || txn == nil || len(txn.PDUs) != 0 {
		t.Fatalf("EDU-only transaction = %+v, %v", txn, err)
	}
	typing := edusOf(t, txn, EDUTyping)
	if len(typing) != 1 || typing[0]["typing"] != false || typing[0]["user_id"] != alice || typing[0]["room_id"] != d.roomID {
		t.Fatalf("typing EDUs %v, want one stop", typing)
	}
	// While it is in flight, a new notice queues behind it; the retry is
	// unchanged.
	if err := n.SetTyping(ctx, alice, d.roomID, true, time.Minute); err != nil {
		t.Fatal(err)
	}
	again, err := n.NextTransaction(ctx, r.name, 50)
	if err != nil || again.TxnID != txn.TxnID || len(again.EDUs) != 1 || string(again.EDUs[0].Content) != string(txn.EDUs[0].Content) {
		t.Fatalf("retry = %+v, %v; want %+v", again, err, txn)
	}
	if err := n.ackTransaction(ctx, r.name, again); err != nil {
		t.Fatal(err)
	}
	if typing := edusOf(t, drainTxn(t, n, r.name), EDUTyping); len(typing) != 1 || typing[0]["typing"] != true {
		t.Fatalf("after the ack: typing EDUs %v, want one start", typing)
	}

	// A public receipt goes, a private one does not.
	msg := send(t, n, Session{UserID: alice}, d.roomID, "hello")
	if err := n.SetReceipt(ctx, alice, d.roomID, ReceiptReadPrivate, msg, ""); err != nil {
		t.Fatal(err)
	}
	if err := n.SetReceipt(ctx, alice, d.roomID, ReceiptRead, msg, ""); err != nil {
		t.Fatal(err)
	}
	status := "away"
	if err := n.SetPresence(ctx, alice, PresenceOnline, &status); err != nil {
		t.Fatal(err)
	}
	if err := n.SendToDevice(ctx, alice, "", "m.test", "t1", map[string]map[string]json.RawMessage{
		x: {"XDEV": json.RawMessage(`{"secret":1}`)}}); err != nil {
		t.Fatal(err)
	}
	txn = drainTxn(t, n, r.name)
	if txn == nil || !slices.Contains(txn.EventIDs, msg) {
		t.Fatalf("transaction %+v lacks the message", txn)
	}
	receipts := edusOf(t, txn, EDUReceipt)
	if len(receipts) != 1 {
		t.Fatalf("receipt EDUs %v, want one", receipts)
	}
	if _, ok := receipts[0][d.roomID].(map[string]any)["m.read"].(map[string]any)[alice]; !ok {
		t.Fatalf("receipt EDU %v lacks alice's m.read", receipts[0])
	}
	if p := edusOf(t, txn, EDUPresence); len(p) != 1 || fmt.Sprint(p[0]["push"]) == "" ||
		p[0]["push"].([]any)[0].(map[string]any)["status_msg"] != "away" {
		t.Fatalf("presence EDUs %v", p)
	}
	td := edusOf(t, txn, EDUDirectToDevice)
	if len(td) != 1 || td[0]["sender"] != alice || td[0]["type"] != "m.test" || td[0]["message_id"] == "" {
		t.Fatalf("to-device EDUs %v", td)
	}
	if _, ok := td[0]["messages"].(map[string]any)[x].(map[string]any)["XDEV"]; !ok {
		t.Fatalf("to-device EDU %v lacks the message for %s", td[0], x)
	}

	// A new device of alice's is a device-list update, with stream_id and
	// prev_id chaining the updates.
	s, err := n.Register(ctx, RegisterRequest{Localpart: "alice", Password: "pw"})
	if err != nil {
		t.Fatal(err)
	}
	first := edusOf(t, drainTxn(t, n, r.name), EDUDeviceListUpdate)
	if len(first) != 1 || first[0]["device_id"] != s.DeviceID || first[0]["user_id"] != alice {
		t.Fatalf("device-list EDUs %v", first)
	}
	if _, err := n.UploadKeys(ctx, alice, s.DeviceID, json.RawMessage(`{"user_id":"`+alice+`","device_id":"`+s.DeviceID+
		`","algorithms":["m.olm.v1.curve25519-aes-sha2"],"keys":{"ed25519:`+s.DeviceID+`":"k"}}`), nil, nil); err != nil {
		t.Fatal(err)
	}
	second := edusOf(t, drainTxn(t, n, r.name), EDUDeviceListUpdate)
	if len(second) != 1 || second[0]["keys"] == nil || fmt.Sprint(second[0]["prev_id"]) != fmt.Sprint([]any{first[0]["stream_id"]}) {
		t.Fatalf("device-list EDU after a key upload %v (first %v)", second, first)
	}
	if err := n.DeleteDevice(ctx, alice, s.DeviceID); err != nil {
		t.Fatal(err)
	}
	if third := edusOf(t, drainTxn(t, n, r.name), EDUDeviceListUpdate); len(third) != 1 || third[0]["deleted"] != true {
		t.Fatalf("device-list EDU after a deletion %v", third)
	}
	if txn := drainTxn(t, n, r.name); txn != nil {
		t.Fatalf("queue not empty: %+v", txn)
	}
}

// TestEDUQueueSurvivesRestart: a to-device message queued for another
// server is on disk with the send, and its transaction keeps its ID and
// content across restarts until acked.
func TestEDUQueueSurvivesRestart(t *testing.T) {
	cfg := testConfig(t.TempDir())
	n := openNode(t, cfg)
	r := newRemoteServer(t)
	ctx := context.Background()
	d, x := roomWithRemoteMember(t, n, r)
	alice := d.user("alice")
	drainTxn(t, n, r.name)
	if err := n.SendToDevice(ctx, alice, "", "m.test", "t1", map[string]map[string]json.RawMessage{x: {"*": json.RawMessage(`{"n":1}`)}}); err != nil {
		t.Fatal(err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}

	n = openNode(t, cfg)
	dests, err := n.Destinations(ctx)
	if err != nil || !slices.Equal(dests, []string{r.name}) {
		t.Fatalf("Destinations after restart = %v, %v", dests, err)
	}
	txn, err := n.NextTransaction(ctx, r.name, 50)
	if err != nil || txn == nil || len(edusOf(t, txn, EDUDirectToDevice)) != 1 {
		t.Fatalf("after restart: %+v, %v", txn, err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}

	n = openNode(t, cfg)
	defer n.Close()
	again, err := n.NextTransaction(ctx, r.name, 50)
	if err != nil || again == nil || again.TxnID != txn.TxnID || len(again.EDUs) != 1 || string(again.EDUs[0].Content) != string(txn.EDUs[0].Content) {
		t.Fatalf("retry after restart = %+v, %v; want %+v", again, err, txn)
	}
	if err := n.ackTransaction(ctx, r.name, again); err != nil {
		t.Fatal(err)
	}
	if none, err := n.NextTransaction(ctx, r.name, 50); err != nil || none != nil {
		t.Fatalf("after the ack: %+v, %v", none, err)
	}
	if dests, err := n.Destinations(ctx); err != nil || len(dests) != 0 {
		t.Fatalf("Destinations after the ack = %v, %v", dests, err)
	}
	if k := countKeys(t, n, tEDUQueue) + countKeys(t, n, tEDUKey) + countKeys(t, n, tEDUDest); k != 0 {
		t.Fatalf("%d EDU queue keys left", k)
	}
}

// TestEDUQueueCaps: past the cap, the oldest ephemeral EDUs not in flight
// are dropped; reliable ones are never dropped: a to-device send to a
// server whose queue is full is refused.
func TestEDUQueueCaps(t *testing.T) {
	n := newTestNode(t)
	r := newRemoteServer(t)
	ctx := context.Background()
	d, x := roomWithRemoteMember(t, n, r)
	alice := d.user("alice")
	drainTxn(t, n, r.name)
	n.setEDUQueueCaps(3, 2)

	enqueue := func(from, to int) {
		t.Helper()
		err := n.DB.Update(func(tx *kv.Txn) error {
			for i := from; i < to; i++ {
				e := queuedEDU{Type: EDUTyping, Content: json.RawMessage(fmt.Sprintf(`{"i":%d}`, i)), Key: fmt.Sprint("k", i)}
				if err := n.enqueueEDU(tx, r.name, eduEphemeral, e); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	indexes := func(txn *OutboundTxn) []int {
		var out []int
		for _, e := range edusOf(t, txn, EDUTyping) {
			out = append(out, int(e["i"].(float64)))
		}
		return out
	}
	enqueue(0, 5)
	txn, err := n.NextTransaction(ctx, r.name, 50)
	if err != nil || !slices.Equal(indexes(txn), []int{2, 3, 4}) {
		t.Fatalf("first transaction carries %v, %v; want the newest three", indexes(txn), err)
	}
	// In flight, 2..4 stay; of 5..8 the oldest goes.
	enqueue(5, 9)
	if err := n.ackTransaction(ctx, r.name, txn); err != nil {
		t.Fatal(err)
	}
	if got := indexes(drainTxn(t, n, r.name)); !slices.Equal(got, []int{6, 7, 8}) {
		t.Fatalf("second transaction carries %v, want [6 7 8]", got)
	}
	if k := countKeys(t, n, tEDUKey); k != 0 {
		t.Fatalf("%d coalescing index entries left", k)
	}

	for i := range 2 {
		if err := n.SendToDevice(ctx, alice, "", "m.test", fmt.Sprint("t", i), map[string]map[string]json.RawMessage{x: {"D": json.RawMessage(`{}`)}}); err != nil {
			t.Fatal(err)
		}
	}
	err = n.SendToDevice(ctx, alice, "", "m.test", "t-over", map[string]map[string]json.RawMessage{x: {"D": json.RawMessage(`{}`)}})
	if !errors.Is(err, core.ErrTooLarge) {
		t.Fatalf("send past the reliable cap: %v, want ErrTooLarge", err)
	}
	if got := edusOf(t, drainTxn(t, n, r.name), EDUDirectToDevice); len(got) != 2 {
		t.Fatalf("%d to-device EDUs queued, want 2", len(got))
	}
	// Room again after delivery.
	if err := n.SendToDevice(ctx, alice, "", "m.test", "t-over", map[string]map[string]json.RawMessage{x: {"D": json.RawMessage(`{}`)}}); err != nil {
		t.Fatal(err)
	}
}

// TestReceiveToDeviceDeduplicates: an m.direct_to_device EDU delivered
// again with the same message ID from the same origin is not delivered
// twice; the same ID from another server is another message. A sender of
// another server than the origin is refused.
func TestReceiveToDeviceDeduplicates(t *testing.T) {
	n := newTestNode(t)
	r, other := newRemoteServer(t), newRemoteServer(t)
	ctx := context.Background()
	x := "@x:" + r.name
	bob := register(t, n, "bob")
	msg := RemoteToDevice{Sender: x, Type: "m.test", MessageID: "m1",
		Messages: map[string]map[string]json.RawMessage{bob.UserID: {"*": json.RawMessage(`{"n":1}`)}}}
	for range 2 {
		if err := n.ReceiveToDevice(ctx, r.name, msg); err != nil {
			t.Fatal(err)
		}
	}
	if err := n.ReceiveToDevice(ctx, other.name, msg); !errors.Is(err, core.ErrForbidden) || !IsEDUDrop(err) {
		t.Fatalf("sender not of the origin: %v, want ErrForbidden", err)
	}
	y := "@y:" + other.name
	if err := n.ReceiveToDevice(ctx, other.name, RemoteToDevice{Sender: y, Type: "m.test", MessageID: "m1", Messages: msg.Messages}); err != nil {
		t.Fatal(err)
	}
	evs, _, err := n.ToDeviceSince(ctx, bob.UserID, bob.DeviceID, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	var senders []string
	for _, ev := range evs {
		senders = append(senders, ev.Sender)
	}
	if !slices.Equal(senders, []string{x, y}) {
		t.Fatalf("delivered from %v, want once from each of %s and %s", senders, x, y)
	}
}

// TestEDUDestinationsBounded: to-device messages start queues for at most
// MaxEDUDestinations servers; a message to one more is refused with
// ErrTooLarge, while servers already waiting still take messages.
func TestEDUDestinationsBounded(t *testing.T) {
	n := newTestNode(t)
	ctx := context.Background()
	alice := session(n, "alice")
	msg := json.RawMessage(`{"body":"hi"}`)
	var servers []string
	for range MaxEDUDestinations + 1 {
		servers = append(servers, newRemoteServer(t).name)
	}
	to := func(s string) map[string]map[string]json.RawMessage {
		return map[string]map[string]json.RawMessage{"@u:" + s: {"DEV": msg}}
	}
	full := map[string]map[string]json.RawMessage{}
	for _, s := range servers[:MaxEDUDestinations] {
		full["@u:"+s] = map[string]json.RawMessage{"DEV": msg}
	}
	if err := n.SendToDevice(ctx, alice.UserID, alice.DeviceID, "m.test", "t1", full); err != nil {
		t.Fatalf("to-device to %d servers: %v", MaxEDUDestinations, err)
	}
	err := n.SendToDevice(ctx, alice.UserID, alice.DeviceID, "m.test", "t2", to(servers[MaxEDUDestinations]))
	if !errors.Is(err, core.ErrTooLarge) {
		t.Fatalf("to-device to server %d: %v, want ErrTooLarge", MaxEDUDestinations+1, err)
	}
	if err := n.SendToDevice(ctx, alice.UserID, alice.DeviceID, "m.test", "t3", to(servers[0])); err != nil {
		t.Fatalf("to-device to a server already waiting: %v", err)
	}
}
