package node

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/edgenode/edgenode/node/core"
	"github.com/edgenode/edgenode/node/inbound"
)

// forkRoom is a public room made on node b (signed with b's key) and given
// to node a, with shared history: the event "hv" is the one forks point at.
func forkRoom(tb testing.TB, a, b *Node) *dagRoom {
	tb.Helper()
	return remoteRoomWith(tb, a, b, "shared")
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
			a := newTestNodeWith(b, func(c *core.Config) { c.NoSyncWrites = true })
			remote := newTestNodeWith(b, func(c *core.Config) { c.NoSyncWrites = true })
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
					res, err := a.InputFederatedPDUs(ctx, inbound.FederatedInput{Origin: remote.ServerName(), PDUs: pdus[:k]})
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
