package federation

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"testing"

	"github.com/edgenode/edgenode/internal/testnet"
	"github.com/edgenode/edgenode/node"
)

func rawJSON(t *testing.T, v any) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestSendTransactionEDUs: a transaction's well-formed EDUs for B's users
// apply beside its PDU, while malformed ones, ones speaking for users of
// other servers and unknown types are dropped without failing it; a
// to-device message resent with the same message ID, in another
// transaction, is not delivered again.
func TestSendTransactionEDUs(t *testing.T) {
	p := newPair(t)
	r := setupRemoteRoom(t, p)
	ctx := context.Background()
	bob := r.user("bob")
	carol := testnet.RegisterWith(ctx, t, p.a.n, node.RegisterRequest{Localpart: "carol", Password: "pw"})
	if _, err := p.a.n.Join(ctx, carol.UserID, carol.DeviceID, r.roomID); err != nil {
		t.Fatal(err)
	}
	mallory := "@mallory:" + p.a.name() // not B's to speak for
	r.build("m1", bob, "m.room.message", nil, map[string]any{"body": "hello"}, []string{"hv"}, []string{"create", "bob", "pl"})
	m1 := r.id("m1")
	edu := func(typ string, content any) json.RawMessage {
		return rawJSON(t, map[string]any{"edu_type": typ, "content": content})
	}
	toDevice := func(sender, id string) json.RawMessage {
		return edu("m.direct_to_device", map[string]any{"sender": sender, "type": "m.test", "message_id": id,
			"messages": map[string]any{carol.UserID: map[string]any{carol.DeviceID: map[string]any{"from": sender}}}})
	}
	body := p.txn(r.json("m1")...)
	body.EDUs = []json.RawMessage{
		json.RawMessage(`"garbage"`),
		json.RawMessage(`{"edu_type":"m.typing","content":"nope"}`),
		edu("m.typing", map[string]any{"room_id": r.roomID, "user_id": mallory, "typing": true}),
		edu("m.typing", map[string]any{"room_id": r.roomID, "user_id": bob}), // no "typing"
		edu("m.typing", map[string]any{"room_id": r.roomID, "user_id": bob, "typing": true}),
		toDevice(mallory, "x1"),
		toDevice(bob, "d1"),
		edu("m.receipt", map[string]any{r.roomID: map[string]any{"m.read": map[string]any{
			bob:     map[string]any{"event_ids": []string{m1}, "data": map[string]any{"ts": 1}},
			mallory: map[string]any{"event_ids": []string{m1}, "data": map[string]any{"ts": 1}},
		}}}),
		edu("m.presence", map[string]any{"push": []any{
			map[string]any{"user_id": bob, "presence": "online", "status_msg": "hi", "last_active_ago": 5},
			map[string]any{"user_id": mallory, "presence": "online", "last_active_ago": 5},
			"junk",
		}}),
		edu("m.device_list_update", map[string]any{"user_id": bob, "device_id": "BDEV", "stream_id": 3}),
		edu("m.device_list_update", map[string]any{"user_id": mallory, "device_id": "MDEV", "stream_id": 3}),
		edu("m.something_else", map[string]any{}),
	}
	if e := pduError(t, p.sendTxn(t, "", body), m1); e != "" {
		t.Fatalf("m1: %s", e)
	}

	if typing, _ := p.a.n.Typing(r.roomID); !slices.Equal(typing, []string{bob}) {
		t.Fatalf("typing %v, want just %s", typing, bob)
	}
	delivered := func() []string {
		t.Helper()
		evs, _, err := p.a.n.ToDeviceSince(ctx, carol.UserID, carol.DeviceID, 0, 10)
		if err != nil {
			t.Fatal(err)
		}
		var senders []string
		for _, ev := range evs {
			senders = append(senders, ev.Sender)
		}
		return senders
	}
	if got := delivered(); !slices.Equal(got, []string{bob}) {
		t.Fatalf("to-device from %v, want just %s", got, bob)
	}
	receipts, err := p.a.n.ReceiptsSince(ctx, carol.UserID, []string{r.roomID}, 0, p.a.n.ReceiptPosition())
	if err != nil {
		t.Fatal(err)
	}
	var rc map[string]map[string]map[string]any
	if err := json.Unmarshal(receipts[r.roomID], &rc); err != nil {
		t.Fatalf("receipts %s: %v", receipts[r.roomID], err)
	}
	if _, ok := rc[m1]["m.read"][bob]; !ok || len(rc[m1]["m.read"]) != 1 {
		t.Fatalf("receipts %v, want bob's only", rc)
	}
	ps, err := p.a.n.Presence(ctx, bob)
	if err != nil || ps.Presence != "online" || ps.StatusMsg == nil || *ps.StatusMsg != "hi" {
		t.Fatalf("bob's presence %+v, %v", ps, err)
	}
	if _, err := p.a.n.Presence(ctx, mallory); err == nil {
		t.Fatalf("mallory's presence was set by B")
	}
	changed, err := p.a.n.DeviceListChangesSince(ctx, carol.UserID, 0, p.a.n.DeviceListPosition())
	if err != nil || !slices.Contains(changed, bob) || slices.Contains(changed, mallory) {
		t.Fatalf("device-list changes %v, %v; want bob's, not mallory's", changed, err)
	}

	// The same message ID again, in a new transaction: not delivered again.
	again := p.txn()
	again.EDUs = []json.RawMessage{toDevice(bob, "d1"), toDevice(bob, "d2")}
	if res := p.sendTxn(t, "", again); res.status != http.StatusOK {
		t.Fatalf("second transaction: %d %v", res.status, res.body)
	}
	if got := delivered(); !slices.Equal(got, []string{bob, bob}) {
		t.Fatalf("to-device from %v after a resend, want two messages", got)
	}
}

// FuzzApplyEDUs: no EDU list, however malformed, panics or fails the
// transaction on a healthy node.
func FuzzApplyEDUs(f *testing.F) {
	for _, seed := range []string{
		`[]`, `["x",1,null,{}]`,
		`[{"edu_type":"m.typing","content":{"room_id":"!r:o","user_id":"@u:o","typing":true}}]`,
		`[{"edu_type":"m.receipt","content":{"!r:o":{"m.read":{"@u:o":{"event_ids":[],"data":{}}}}}}]`,
		`[{"edu_type":"m.receipt","content":{"!r:o":{"m.read":5}}}]`,
		`[{"edu_type":"m.presence","content":{"push":[{"user_id":"@u:o","presence":"online"},7]}}]`,
		`[{"edu_type":"m.direct_to_device","content":{"sender":"@u:o","type":"t","message_id":"m","messages":{"@v:o":{"*":{}}}}}]`,
		`[{"edu_type":"m.direct_to_device","content":{"sender":"@u:o","type":"t","message_id":"m","messages":{"@v:o":{"*":5}}}}]`,
		`[{"edu_type":"m.device_list_update","content":{"user_id":"@u:o","device_id":"D","stream_id":1}}]`,
	} {
		f.Add([]byte(seed))
	}
	n := testnet.OpenNode(f, testnet.NodeConfig(f.TempDir()))
	h := &handler{n: n, log: n.Logger()}
	f.Fuzz(func(t *testing.T, body []byte) {
		var edus []json.RawMessage
		if json.Unmarshal(body, &edus) != nil {
			return
		}
		if _, err := h.applyEDUs(context.Background(), "o", "txn", edus); err != nil {
			t.Fatalf("applyEDUs(%s): %v", body, err)
		}
	})
}
