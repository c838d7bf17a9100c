package search_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/edgenode/edgenode/internal/testnet"
	"github.com/edgenode/edgenode/node/core"
	"github.com/edgenode/edgenode/node/search"
)

// BenchmarkCatchUp: the catch-up of a node upgraded in place, over 10,000
// messages in 10 rooms (the index dropped before each run): what it adds
// to that node's first start.
func BenchmarkCatchUp(b *testing.B) {
	const rooms, perRoom = 10, 1_000
	ctx := context.Background()
	n := testnet.OpenNode(b, testnet.FastNodeConfig(b.TempDir()))
	alice := testnet.Register(ctx, b, n, "alice")
	for r := range rooms {
		room := testnet.CreateRoom(ctx, b, n, core.CreateRoomRequest{Creator: alice.UserID, Preset: core.PresetPrivateChat})
		for i := range perRoom {
			testnet.SendText(ctx, b, n, alice.UserID, alice.DeviceID, room, fmt.Sprintf("message %d of room %d, with a few more words to index", i, r))
		}
	}
	b.ResetTimer()
	var took time.Duration
	for range b.N {
		b.StopTimer()
		dropTables(b, n, search.TablePostings, search.TableCatchUp)
		b.StartTimer()
		start := time.Now()
		if err := search.CatchUpTxns(ctx, n.Search, -1, 256); err != nil {
			b.Fatal(err)
		}
		took += time.Since(start)
	}
	b.ReportMetric(float64(rooms*perRoom)*float64(b.N)/took.Seconds(), "events/s")
}
