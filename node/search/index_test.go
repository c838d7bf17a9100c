package search_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"slices"
	"testing"

	"github.com/edgenode/edgenode/kv"
	"github.com/edgenode/edgenode/node"
	"github.com/edgenode/edgenode/node/core"
	"github.com/edgenode/edgenode/node/search"
)

// testNode opens a node (its indexers registered as node.New does) on a
// fresh directory.
func testNode(t testing.TB) *node.Node {
	t.Helper()
	n, err := node.New(context.Background(), core.Config{
		DataDir: t.TempDir(), OpenRegistration: true, StorageProfile: "phone",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// postings counts the index's keys for token.
func postings(t testing.TB, n *node.Node, token string) int {
	t.Helper()
	count := 0
	err := n.DB.View(func(tx *kv.Txn) error {
		return tx.Each(kv.Scan{Prefix: kv.Key(search.TablePostings, token), KeysOnly: true}, func(_, _ []byte) (bool, error) {
			count++
			return true, nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return count
}

// TestRedactionRemovesPostings: a redacted message's words leave the index
// on disk in the redaction's own commit, not only the results.
func TestRedactionRemovesPostings(t *testing.T) {
	ctx := context.Background()
	n := testNode(t)
	s, err := n.Register(ctx, node.RegisterRequest{Localpart: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	room, err := n.CreateRoom(ctx, core.CreateRoomRequest{Creator: s.UserID, DeviceID: s.DeviceID, Preset: "private_chat"})
	if err != nil {
		t.Fatal(err)
	}
	say := func(body string) string {
		raw, _ := json.Marshal(map[string]string{"msgtype": "m.text", "body": body})
		id, err := n.SendEvent(ctx, core.SendRequest{Sender: s.UserID, DeviceID: s.DeviceID, RoomID: room, Type: "m.room.message", Content: raw})
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	secret := say("my password is correcthorse battery")
	say("battery low")
	if got := postings(t, n, "correcthorse"); got != 1 {
		t.Fatalf("%d postings of correcthorse before the redaction, want 1", got)
	}
	if _, err := n.Redact(ctx, core.RedactRequest{Sender: s.UserID, DeviceID: s.DeviceID, RoomID: room, EventID: secret}); err != nil {
		t.Fatal(err)
	}
	for token, want := range map[string]int{"correcthorse": 0, "password": 0, "battery": 1} {
		if got := postings(t, n, token); got != want {
			t.Errorf("%d postings of %q after the redaction, want %d", got, token, want)
		}
	}
	res, err := n.SearchRoomEvents(ctx, search.Query{UserID: s.UserID, Terms: []string{"battery"}, Limit: 10})
	if err != nil || len(res.Hits) != 1 || res.Count != 1 {
		t.Errorf("search battery: %+v, %v", res, err)
	}
}

// TestScanBudget: with a budget far smaller than the matches, ordering by
// recency still pages through every match exactly once, newest first, and
// the count stays the same on every page; ordering by rank covers the
// newest matches the budget reaches.
func TestScanBudget(t *testing.T) {
	ctx := context.Background()
	n := testNode(t)
	search.SetMaxScan(n.Search, 7)
	s, err := n.Register(ctx, node.RegisterRequest{Localpart: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for range 2 {
		room, err := n.CreateRoom(ctx, core.CreateRoomRequest{Creator: s.UserID, DeviceID: s.DeviceID, Preset: "private_chat"})
		if err != nil {
			t.Fatal(err)
		}
		for i := range 15 {
			raw, _ := json.Marshal(map[string]string{"msgtype": "m.text", "body": "needle and thread"})
			if i%2 == 0 {
				raw, _ = json.Marshal(map[string]string{"msgtype": "m.text", "body": "needle alone"})
			}
			id, err := n.SendEvent(ctx, core.SendRequest{Sender: s.UserID, DeviceID: s.DeviceID, RoomID: room, Type: "m.room.message", Content: raw})
			if err != nil {
				t.Fatal(err)
			}
			if i%2 != 0 {
				want = append(want, id)
			}
		}
	}
	slices.Reverse(want)
	q := search.Query{UserID: s.UserID, Terms: []string{"needle", "thread"}, Limit: 4}
	var got []string
	lastCount := 0
	for page := 0; ; page++ {
		if page > 30 {
			t.Fatal("pagination does not end")
		}
		res, err := n.SearchRoomEvents(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		// The count is of the matches the scans reached: it grows as the
		// pages go on, and is the total on the last.
		if res.Count < lastCount || (res.Next == nil && res.Count != len(want)) {
			t.Errorf("page %d: count %d after %d, of %d", page, res.Count, lastCount, len(want))
		}
		lastCount = res.Count
		if len(res.Hits) > 4 {
			t.Fatalf("page %d: %d hits over the limit", page, len(res.Hits))
		}
		for _, h := range res.Hits {
			got = append(got, h.Event.PDU.EventID())
		}
		if res.Next == nil {
			break
		}
		q.After = res.Next
	}
	if !slices.Equal(got, want) {
		t.Errorf("pages give %d events\n%q\nwant %d\n%q", len(got), got, len(want), want)
	}

	// By rank, "thread" (7 per room) fits the budget and drives: every
	// event with both words is found. "needle" alone (15 per room) does
	// not: the newest the budget reaches are ranked.
	res, err := n.SearchRoomEvents(ctx, search.Query{UserID: s.UserID, Terms: []string{"needle", "thread"}, Limit: 100, ByRank: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Hits) != len(want) || res.Count != len(want) {
		t.Errorf("needle thread by rank with a budget of 7: %d hits (count %d) of %d", len(res.Hits), res.Count, len(want))
	}
	res, err = n.SearchRoomEvents(ctx, search.Query{UserID: s.UserID, Terms: []string{"needle"}, Limit: 100, ByRank: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Hits) == 0 || len(res.Hits) >= 30 {
		t.Errorf("needle by rank with a budget of 7: %d hits of 30", len(res.Hits))
	}
}
