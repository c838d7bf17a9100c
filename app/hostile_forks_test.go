package app

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/edgenode/edgenode/node/core"
	"github.com/matrix-org/gomatrixserverlib/spec"
)

// TestHostileForks: A rogue (a stranger's libp2p host), a member of alice's public room on A, sends 1,500
// messages that each have one old event (its join) as their only
// prev event, in 30 transactions of 50 (within its per-peer burst), leaving
// A's room with 1,500 forward extremities. Alice's next message through
// A's client API is still answered 200 and refers to at most 20 prev
// events, and as alice keeps talking the forks converge: every message
// takes up to 19 extremities off. Before the fix, the message referred to
// every extremity, was over 65,536 bytes, and every local send answered
// 413. The intake time is logged; BenchmarkForkIntake (package node)
// measures that it stays flat.
func TestHostileForks(t *testing.T) {
	const forks, perTxn, maxPrevs = 1500, 50, 20
	a := startP2P(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	rr := rogueRoomOn(ctx, t, a, core.PresetPublicChat)
	join := rr.stateID(ctx, t, spec.MRoomMember, rr.r.userID("m"))
	joinEv, err := a.node.Event(ctx, rr.alice.UserID, join)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 { // the join is old by the time the forks come
		if status, errcode, _ := clientSend(t, a, rr.alice.AccessToken, rr.roomID, fmt.Sprintf("before%d", i), "before"); status != http.StatusOK {
			t.Fatalf("send before the forks: %d %s", status, errcode)
		}
	}

	auth := rr.authIDs(ctx, t)
	pdus := make([]json.RawMessage, forks)
	ids := make([]string, forks)
	for i := range pdus {
		ev := rr.pdu(t, []string{join}, auth, joinEv.PDU.Depth()+1, fmt.Sprintf("fork %d", i))
		pdus[i], ids[i] = ev.JSON(), ev.EventID()
	}
	start := time.Now()
	for k := 0; k < forks; k += perTxn {
		res := rr.r.sendRaw(ctx, pdus[k:k+perTxn], nil)
		for _, id := range ids[k : k+perTxn] {
			if e, ok := res[id]; !ok || e != "" {
				t.Fatalf("fork %s: answer %q (present %v), want accepted", id, e, ok)
			}
		}
	}
	t.Logf("A took in %d forks in %v", forks, time.Since(start))
	ext, err := a.node.ForwardExtremities(ctx, rr.roomID)
	if err != nil {
		t.Fatal(err)
	}
	if len(ext) < forks {
		t.Fatalf("%d forward extremities after %d forks", len(ext), forks)
	}

	// Alice keeps talking: each message is accepted, refers to at most 20
	// prev events, and leaves fewer extremities than before.
	prev := len(ext)
	for i := range 10 {
		status, errcode, id := clientSend(t, a, rr.alice.AccessToken, rr.roomID, fmt.Sprintf("after%d", i), "after the forks")
		if status != http.StatusOK {
			t.Fatalf("message %d after the forks: %d %s, want 200", i, status, errcode)
		}
		ev, err := a.node.Event(ctx, rr.alice.UserID, id)
		if err != nil {
			t.Fatal(err)
		}
		if n := len(ev.PDU.PrevEventIDs()); n > maxPrevs || n < 2 {
			t.Fatalf("message %d refers to %d prev events, want 2..%d", i, n, maxPrevs)
		}
		ext, err := a.node.ForwardExtremities(ctx, rr.roomID)
		if err != nil {
			t.Fatal(err)
		}
		if len(ext) != prev-maxPrevs+1 {
			t.Fatalf("message %d left %d extremities, had %d: want %d", i, len(ext), prev, prev-maxPrevs+1)
		}
		prev = len(ext)
	}
}

// TestHostileDAGBounds: a PDU naming more than 20 prev events or more than
// 10 auth events is refused on its own inside /send (200, with an error for
// that PDU, as the spec's /send answers), and is not served.
func TestHostileDAGBounds(t *testing.T) {
	a := startP2P(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rr := rogueRoomOn(ctx, t, a, core.PresetPublicChat)
	var msgs []string
	for i := range 21 {
		status, errcode, id := clientSend(t, a, rr.alice.AccessToken, rr.roomID, fmt.Sprintf("m%d", i), "message")
		if status != http.StatusOK {
			t.Fatalf("send: %d %s", status, errcode)
		}
		msgs = append(msgs, id)
	}
	latest := rr.latest(ctx, t)
	auth := rr.authIDs(ctx, t)
	state := []string{
		rr.stateID(ctx, t, spec.MRoomJoinRules, ""), rr.stateID(ctx, t, spec.MRoomHistoryVisibility, ""),
		rr.stateID(ctx, t, spec.MRoomMember, rr.alice.UserID),
	}
	manyAuth := append(append(append([]string{}, auth...), state...), msgs[:5]...)
	cases := []struct {
		name, want   string
		prevs, auths []string
	}{
		{"21 prev events", "at most 20", msgs, auth},
		{"11 auth events", "at most 10", []string{latest.EventID()}, manyAuth},
		{"20 prev events", "", msgs[1:], auth},
	}
	var pdus []json.RawMessage
	var ids []string
	for _, c := range cases {
		ev := rr.pdu(t, c.prevs, c.auths, latest.Depth()+1, c.name)
		pdus, ids = append(pdus, ev.JSON()), append(ids, ev.EventID())
	}
	res := rr.r.sendRaw(ctx, pdus, nil)
	for i, c := range cases {
		e, ok := res[ids[i]]
		if !ok {
			t.Errorf("%s: no answer for the PDU", c.name)
			continue
		}
		if c.want == "" {
			if e != "" {
				t.Errorf("%s: %q, want accepted", c.name, e)
			}
			continue
		}
		if !strings.Contains(e, c.want) {
			t.Errorf("%s: answer %q, want an error saying %q", c.name, e, c.want)
		}
		if _, err := a.node.Event(ctx, rr.alice.UserID, ids[i]); err == nil {
			t.Errorf("%s: the PDU is served", c.name)
		}
	}
}
