package node

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/matrix-org/gomatrixserverlib"
	"github.com/matrix-org/gomatrixserverlib/spec"
)

// forkRoom is a public room made on node b (signed with b's key) and given
// to node a over its federation input: create, bob's join, power levels,
// join rules, history visibility ("hv", the event forks point at).
func forkRoom(tb testing.TB, a, b *Node) *dagRoom {
	tb.Helper()
	d := newDAGRoom(tb, b, gomatrixserverlib.RoomVersionV10)
	bob := d.user("bob")
	d.build("create", dagEvent{Sender: bob, Type: spec.MRoomCreate, StateKey: stateKey(""), Content: d.createContent(bob)})
	d.build("bob", dagEvent{Sender: bob, Type: spec.MRoomMember, StateKey: stateKey(bob), Content: map[string]any{"membership": "join"},
		Prev: []string{"create"}, Auth: []string{"create"}})
	d.build("pl", dagEvent{Sender: bob, Type: spec.MRoomPowerLevels, StateKey: stateKey(""), Content: powerLevels(map[string]int{bob: 100}),
		Prev: []string{"bob"}, Auth: []string{"create", "bob"}})
	d.build("jr", dagEvent{Sender: bob, Type: spec.MRoomJoinRules, StateKey: stateKey(""), Content: map[string]any{"join_rule": "public"},
		Prev: []string{"pl"}, Auth: []string{"create", "bob", "pl"}})
	d.build("hv", dagEvent{Sender: bob, Type: spec.MRoomHistoryVisibility, StateKey: stateKey(""), Content: map[string]any{"history_visibility": "shared"},
		Prev: []string{"jr"}, Auth: []string{"create", "bob", "pl"}})
	res, err := a.InputFederatedPDUs(context.Background(), FederatedInput{Origin: b.ServerName(), PDUs: d.raw("create", "bob", "pl", "jr", "hv"), AllowNewRooms: true})
	if err != nil {
		tb.Fatal(err)
	}
	for i, r := range res {
		if r.Err != nil {
			tb.Fatalf("bootstrap PDU %d: %v", i, r.Err)
		}
	}
	return d
}

// buildForks builds n messages from bob, each with the old event "hv" as
// its only prev event: n forks of the room.
func buildForks(d *dagRoom, prefix string, n int) []json.RawMessage {
	out := make([]json.RawMessage, n)
	for i := range n {
		out[i] = d.build(fmt.Sprintf("%s%d", prefix, i), dagEvent{Sender: d.user("bob"), Type: "m.room.message",
			Content: map[string]any{"msgtype": "m.text", "body": fmt.Sprintf("fork %d", i)},
			Prev:    []string{"hv"}, Auth: []string{"create", "bob", "pl"}}).JSON()
	}
	return out
}

// BenchmarkForkIntake: a peer sends n forks of a room (each pointing at one
// old event), in transactions of 50 as /send allows. The cost of taking in
// a fork must not grow with the forks already taken in: ns/fork at 100
// forks and at 1,500 should be about the same, and so should ns/fork-last
// (the last transaction's forks, taken in on top of all the others).
func BenchmarkForkIntake(b *testing.B) {
	for _, forks := range []int{100, 1500} {
		b.Run(fmt.Sprintf("forks=%d", forks), func(b *testing.B) {
			a := newTestNodeWith(b, func(c *Config) { c.NoSyncWrites = true })
			remote := newTestNodeWith(b, func(c *Config) { c.NoSyncWrites = true })
			ctx := context.Background()
			var total, last time.Duration
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				d := forkRoom(b, a, remote)
				pdus := buildForks(d, "fork", forks)
				b.StartTimer()
				for len(pdus) > 0 {
					k := min(50, len(pdus))
					start := time.Now()
					res, err := a.InputFederatedPDUs(ctx, FederatedInput{Origin: remote.ServerName(), PDUs: pdus[:k]})
					took := time.Since(start)
					if err != nil {
						b.Fatal(err)
					}
					for _, r := range res {
						if r.Err != nil {
							b.Fatalf("fork %s: %v", r.EventID, r.Err)
						}
					}
					total += took
					pdus = pdus[k:]
					if len(pdus) == 0 {
						last += took
					}
				}
			}
			b.ReportMetric(float64(total.Nanoseconds())/float64(b.N*forks), "ns/fork")
			b.ReportMetric(float64(last.Nanoseconds())/float64(b.N*min(50, forks)), "ns/fork-last")
		})
	}
}
