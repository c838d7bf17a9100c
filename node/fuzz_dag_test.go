package node

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"unicode/utf8"

	"github.com/edgenode/edgenode/internal/identity"
	"github.com/edgenode/edgenode/kv"
	"github.com/edgenode/edgenode/node/core"
	"github.com/edgenode/edgenode/node/inbound"
	"github.com/matrix-org/gomatrixserverlib"
	"github.com/matrix-org/gomatrixserverlib/spec"
)

// FuzzFederatedTxnDAG drives the path a /send transaction takes into room
// input (InputFederatedPDUs, as the federation handler calls it) with PDUs
// whose DAG fields and content the fuzzer chooses, signed by the room's
// remote member's server so that they get past the signature check and
// reach auth, state and the room head: the depth (any int64, or raw text
// such as a float, put into the JSON after signing), how many prev and auth
// events (real events of the room first, unknown ones when asked), and the
// message body's raw bytes inside the JSON (invalid UTF-8, lone surrogates,
// escapes; a body the JSON cannot hold is put in after signing). Each
// input must leave the node sound: no panic, no failure of the batch as a
// whole, nothing accepted with a depth outside 0..2^53-1, over 20 prev or
// 10 auth events, or invalid UTF-8, and the room still takes a local
// user's message, at a depth within range and with at most 20 prev events.
func FuzzFederatedTxnDAG(f *testing.F) {
	a := newTestNodeWith(f, func(c *core.Config) { c.NoSyncWrites = true })
	b := newTestNodeWith(f, func(c *core.Config) { c.NoSyncWrites = true })
	d := forkRoom(f, a, b)
	alice := register(f, a, "alice")
	joinLocal(f, a, alice, d.roomID)
	// A chain of 25 messages, so that more than 20 prev events can all be
	// real events of the room.
	chain := make([]json.RawMessage, 25)
	prevName := "hv"
	for i := range chain {
		name := fmt.Sprintf("c%d", i)
		chain[i] = d.build(name, dagEvent{Sender: d.user("bob"), Type: "m.room.message", Content: map[string]any{"body": name},
			Prev: []string{prevName}, Auth: []string{"create", "bob", "pl"}}).JSON()
		prevName = name
	}
	if res, err := a.InputFederatedPDUs(context.Background(), inbound.FederatedInput{Origin: b.ServerName(), PDUs: chain}); err != nil || res[0].Err != nil {
		f.Fatalf("chain: %v %v", err, res)
	}
	var pool []string // newest first
	for i := len(chain) - 1; i >= 0; i-- {
		pool = append(pool, d.id(fmt.Sprintf("c%d", i)))
	}
	pool = append(pool, d.id("hv"), d.id("jr"), d.id("pl"), d.id("bob"), d.id("create"))
	authBase := []string{d.id("create"), d.id("bob"), d.id("pl"), d.id("jr"), d.id("hv")}
	key, server, roomID, version, sender, ts := d.key, d.server, d.roomID, d.version, d.user("bob"), d.ts

	for _, s := range []struct {
		depth        int64
		prevs, auths uint8
		body         string
		rawDepth     string
		unknown      bool
	}{
		{1 << 20, 1, 3, "hello", "", false},
		{core.MaxDepth, 1, 3, "deepest", "", false},
		{core.MaxDepth - 1, 2, 3, "almost", "", false},
		{-1, 1, 3, "negative", "", false},
		{0, 1, 3, "zero", "", false},
		{5, 1, 3, "float", "1.5", false},
		{5, 1, 3, "exp", "1e3", false},
		{5, 1, 3, "beyond", "9007199254740992", false},
		{5, 1, 3, "very negative", "-9007199254740992", false},
		{5, 1, 3, "string", `"5"`, false},
		{5, 1, 3, "minus zero", "-0", false},
		{30, 20, 3, "twenty prevs", "", false},
		{30, 21, 3, "twenty-one prevs", "", false},
		{30, 30, 3, "thirty prevs", "", false},
		{30, 1, 10, "ten auth", "", false},
		{30, 1, 11, "eleven auth", "", false},
		{30, 1, 0, "no auth", "", false},
		{30, 3, 3, "unknown prevs", "", true},
		{30, 1, 3, "BAD-\xff\xfe", "", false},
		{30, 1, 3, "\xed\xa0\x80", "", false}, // a surrogate in UTF-8 form
		{30, 1, 3, `\ud800`, "", false},
		{30, 1, 3, `x\udc00y`, "", false},
		{30, 1, 3, `\ud83d\ude00`, "", false},
		{30, 1, 3, `\u0000`, "", false},
		{30, 1, 3, `"`, "", false},
		{30, 1, 3, `\`, "", false},
	} {
		f.Add(s.depth, s.prevs, s.auths, []byte(s.body), s.rawDepth, s.unknown)
	}

	verImpl, err := gomatrixserverlib.GetRoomVersion(version)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, depth int64, nPrev, nAuth uint8, body []byte, rawDepth string, unknown bool) {
		ctx := context.Background()
		prevs := make([]string, 0, nPrev%40)
		for i := range int(nPrev % 40) {
			if unknown || i >= len(pool) {
				prevs = append(prevs, fmt.Sprintf("$unknown%d", i))
			} else {
				prevs = append(prevs, pool[i])
			}
		}
		auths := make([]string, 0, nAuth%16)
		for i := range int(nAuth % 16) {
			if i < len(authBase) {
				auths = append(auths, authBase[i])
			} else {
				auths = append(auths, pool[(i-len(authBase))%len(pool)])
			}
		}
		content := append(append([]byte(`{"msgtype":"m.text","body":"`), body...), `"}`...)
		spliceBody := !json.Valid(content)
		if spliceBody {
			content = []byte(`{"msgtype":"m.text","body":"SPLICE"}`)
		}
		buildDepth := depth
		if buildDepth < -core.MaxDepth || buildDepth > core.MaxDepth {
			buildDepth, rawDepth = 7, fmt.Sprint(depth) // the builder refuses it: put it in after signing
		}
		proto := gomatrixserverlib.ProtoEvent{SenderID: sender, RoomID: roomID, Type: "m.room.message",
			PrevEvents: prevs, AuthEvents: auths, Depth: buildDepth, Content: spec.RawJSON(content)}
		ev, err := verImpl.NewEventBuilderFromProtoEvent(&proto).Build(ts, spec.ServerName(server), identity.KeyID, key)
		if err != nil {
			return // not an event the library will sign: nothing to send
		}
		raw := ev.JSON()
		if spliceBody {
			raw = bytes.Replace(raw, []byte(`"SPLICE"`), append(append([]byte(`"`), body...), '"'), 1)
		}
		if rawDepth != "" {
			raw = bytes.Replace(raw, fmt.Appendf(nil, `"depth":%d`, buildDepth), []byte(`"depth":`+rawDepth), 1)
		}
		res, err := a.InputFederatedPDUs(ctx, inbound.FederatedInput{Origin: server, PDUs: []json.RawMessage{raw}})
		if err != nil {
			t.Fatalf("InputFederatedPDUs failed as a whole: %v", err)
		}
		if len(res) != 1 {
			t.Fatalf("%d results for one PDU", len(res))
		}
		if id := res[0].EventID; id != "" && has(t, a, id) {
			checkStored(t, a, id)
		}
		id, err := a.SendEvent(ctx, core.SendRequest{Sender: alice.UserID, DeviceID: alice.DeviceID, RoomID: roomID,
			Type: "m.room.message", Content: json.RawMessage(`{"msgtype":"m.text","body":"still here"}`)})
		if err != nil {
			t.Fatalf("local send after the PDU: %v", err)
		}
		checkStored(t, a, id)
		err = a.DB.View(func(tx *kv.Txn) error {
			room, err := core.LoadRoom(tx, roomID)
			if err == nil && len(room.ExtStates) != len(room.Extremities) {
				return fmt.Errorf("room head: %d extremity states for %d extremities", len(room.ExtStates), len(room.Extremities))
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}

// checkStored fails unless the stored event id (accepted or not) is within
// the bounds every event the node keeps must meet.
func checkStored(t *testing.T, n *Node, id string) {
	t.Helper()
	var p gomatrixserverlib.PDU
	err := n.DB.View(func(tx *kv.Txn) error {
		var err error
		p, err = n.LoadPDU(tx, id)
		return err
	})
	if err != nil {
		t.Fatalf("stored event %s: %v", id, err)
	}
	if d := p.Depth(); d < 0 || d > core.MaxDepth {
		t.Fatalf("event %s stored at depth %d", id, d)
	}
	if len(p.PrevEventIDs()) > core.MaxPrevEvents || len(p.AuthEventIDs()) > core.MaxAuthEvents {
		t.Fatalf("event %s stored with %d prev and %d auth events", id, len(p.PrevEventIDs()), len(p.AuthEventIDs()))
	}
	if !utf8.Valid(p.JSON()) || len(p.JSON()) > core.MaxEventSize {
		t.Fatalf("event %s stored as %d bytes of JSON, valid UTF-8 %v", id, len(p.JSON()), utf8.Valid(p.JSON()))
	}
}
