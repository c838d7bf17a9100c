package app

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/edgenode/edgenode/internal/testnet"
	"github.com/edgenode/edgenode/node"
	"github.com/edgenode/edgenode/node/core"
)

// BenchmarkStickyLateJoiner (MSC4354 acceptance 5): on node A alice has
// sent n sticky events lasting an hour (in "interleaved", each after an
// ordinary message, so each reaches the joiner with a gap of its own). One
// op is a fresh node C's carol joining through A: from her client's join
// request until her client, in a /sync loop (timeline limit 1), holds all
// n sticky events. It covers send_join, A's push of the sticky events into
// C's queue in the join's commit, /send transactions over libp2p QUIC, C
// fetching the missing prev events, input with fsync, and /sync paging
// (100 sticky events per response). Starting C is not timed.
func BenchmarkStickyLateJoiner(b *testing.B) {
	for _, tc := range []struct {
		name        string
		n           int
		interleaved bool
	}{{"20", 20, false}, {"1000", 1000, false}, {"1000-interleaved", 1000, true}} {
		b.Run(tc.name, func(b *testing.B) {
			ctx := context.Background()
			a := startBenchApp(b, nil)
			alice := testnet.Register(ctx, b, a.node, "alice")
			roomID := testnet.PublicRoom(ctx, b, a.node, alice.UserID)
			var want []string
			for i := range tc.n {
				if tc.interleaved {
					sendStickyMsg(ctx, b, a, alice, roomID, fmt.Sprintf("message %d", i), -1)
				}
				want = append(want, sendStickyMsg(ctx, b, a, alice, roomID, fmt.Sprintf("sticky %d", i), core.MaxStickyDurationMS))
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				c, err := Start(ctx, benchAppConfig(b.TempDir(), quicAddrs(a)))
				if err != nil {
					b.Fatal(err)
				}
				carol, err := c.node.Register(ctx, node.RegisterRequest{Localpart: "carol", Admin: true})
				if err != nil {
					b.Fatal(err)
				}
				client := newStickyClient(b, c, carol.AccessToken, roomID)
				client.syncOnce(ctx)
				wctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
				b.StartTimer()
				u := c.BaseURL() + "/_matrix/client/v3/join/" + url.PathEscape(roomID) + "?server_name=" + url.QueryEscape(a.node.ServerName())
				if status, body := benchCall(b, http.MethodPost, u, carol.AccessToken, "{}"); status != http.StatusOK {
					b.Fatalf("join: %d %s", status, body)
				}
				client.waitFor(wctx, want)
				b.StopTimer()
				cancel()
				client.checkExactly(want)
				cctx, ccancel := context.WithTimeout(ctx, 30*time.Second)
				if err := c.Close(cctx); err != nil {
					b.Fatal(err)
				}
				ccancel()
				b.StartTimer()
			}
		})
	}
}
