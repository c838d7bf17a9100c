package search_test

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/edgenode/edgenode/internal/testnet"
	"github.com/edgenode/edgenode/kv"
	"github.com/edgenode/edgenode/node"
	"github.com/edgenode/edgenode/node/core"
	"github.com/edgenode/edgenode/node/search"
)

// oldNode makes, in dir, a node whose messages were stored before it had a
// search index: alice sends needles in two rooms (more in one than a
// catch-up transaction takes) and a redacted secret, then the index's
// tables are removed. It returns the node (open), alice and the number of
// needles.
func oldNode(ctx context.Context, t *testing.T, dir string) (*node.Node, node.Session, int) {
	t.Helper()
	n := testnet.OpenNodeUnclosed(t, testnet.FastNodeConfig(dir))
	alice := testnet.Register(ctx, t, n, "alice")
	needles := 0
	for _, count := range []int{70, 5} {
		room := testnet.CreateRoom(ctx, t, n, core.CreateRoomRequest{Creator: alice.UserID, Preset: core.PresetPrivateChat})
		for i := range count {
			testnet.SendText(ctx, t, n, alice.UserID, alice.DeviceID, room, fmt.Sprintf("needle number %d", i))
			needles++
		}
		secret := testnet.SendText(ctx, t, n, alice.UserID, alice.DeviceID, room, "correcthorse")
		if _, err := n.Redact(ctx, core.RedactRequest{Sender: alice.UserID, DeviceID: alice.DeviceID, RoomID: room, EventID: secret}); err != nil {
			t.Fatal(err)
		}
	}
	dropTables(t, n, search.TablePostings, search.TableCatchUp)
	if got := found(ctx, t, n, alice.UserID, "needle"); got != 0 {
		t.Fatalf("index not removed: %d found", got)
	}
	return n, alice, needles
}

// dropTables deletes every key of the tables, a thousand per transaction.
func dropTables(tb testing.TB, n *node.Node, tables ...string) {
	tb.Helper()
	var keys [][]byte
	err := n.DB.View(func(tx *kv.Txn) error {
		for _, table := range tables {
			err := tx.Each(kv.Scan{Prefix: kv.Key(table), KeysOnly: true}, func(k, _ []byte) (bool, error) {
				keys = append(keys, bytes.Clone(k))
				return true, nil
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	for chunk := range slices.Chunk(keys, 1000) {
		err := n.DB.Update(func(tx *kv.Txn) error {
			for _, k := range chunk {
				if err := tx.Delete(k); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			tb.Fatal(err)
		}
	}
}

// keysIn counts the keys of a table.
func keysIn(tb testing.TB, n *node.Node, table string) int {
	tb.Helper()
	count := 0
	err := n.DB.View(func(tx *kv.Txn) error {
		return tx.Each(kv.Scan{Prefix: kv.Key(table), KeysOnly: true}, func(_, _ []byte) (bool, error) {
			count++
			return true, nil
		})
	})
	if err != nil {
		tb.Fatal(err)
	}
	return count
}

// found is how many of userID's events a search for term finds.
func found(ctx context.Context, t *testing.T, n *node.Node, userID, term string) int {
	t.Helper()
	res, err := n.SearchRoomEvents(ctx, search.Query{UserID: userID, Terms: []string{term}, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if res.Count != len(res.Hits) {
		t.Fatalf("count %d, %d hits", res.Count, len(res.Hits))
	}
	return len(res.Hits)
}

// TestCatchUpIndexesOldMessages: a node that stored messages before it had
// a search index indexes them when it opens, once; a redacted message stays
// out.
func TestCatchUpIndexesOldMessages(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	n, alice, needles := oldNode(ctx, t, dir)
	n.Close()
	n = testnet.OpenNodeUnclosed(t, testnet.FastNodeConfig(dir))
	if got := found(ctx, t, n, alice.UserID, "needle"); got != needles {
		t.Fatalf("after reopening: %d of %d needles found", got, needles)
	}
	if got := postings(t, n, "correcthorse"); got != 0 {
		t.Fatalf("the redacted message was indexed: %d postings", got)
	}
	if got := keysIn(t, n, search.TableCatchUp); got != 1 {
		t.Fatalf("%d catch-up keys once built, want the mark alone", got)
	}
	// Once built, the index is kept by the commit: a reopening does not
	// walk the rooms again (the postings dropped here stay dropped).
	dropTables(t, n, search.TablePostings)
	n.Close()
	n = testnet.OpenNode(t, testnet.FastNodeConfig(dir))
	if got := found(ctx, t, n, alice.UserID, "needle"); got != 0 {
		t.Fatalf("the catch-up ran again: %d found", got)
	}
}

// TestCatchUpResumes: a node that stops in the middle of the catch-up
// resumes it where it stopped when it opens again, and finishes it.
func TestCatchUpResumes(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	n, alice, needles := oldNode(ctx, t, dir)
	if err := search.CatchUpTxns(ctx, n.Search, 2, 16); err != nil {
		t.Fatal(err)
	}
	done := found(ctx, t, n, alice.UserID, "needle")
	if done == 0 || done >= needles {
		t.Fatalf("after two transactions: %d of %d needles found", done, needles)
	}
	// The crash. The postings written so far are dropped, so that what the
	// reopened node finds tells a resumed walk (the rest) from one started
	// over (all).
	dropTables(t, n, search.TablePostings)
	n.Close()
	n = testnet.OpenNode(t, testnet.FastNodeConfig(dir))
	if got := found(ctx, t, n, alice.UserID, "needle"); got != needles-done {
		t.Fatalf("after reopening: %d needles found, want the %d the first run had not reached", got, needles-done)
	}
}

// TestCatchUpLongMessages: messages of hundreds of words each, more of
// them than one of the phone profile's transactions can take the postings
// of, are all indexed (the walk's transactions are bounded by postings, not
// only by events).
func TestCatchUpLongMessages(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	n := testnet.OpenNodeUnclosed(t, testnet.FastNodeConfig(dir))
	alice := testnet.Register(ctx, t, n, "alice")
	room := testnet.CreateRoom(ctx, t, n, core.CreateRoomRequest{Creator: alice.UserID, Preset: core.PresetPrivateChat})
	const messages = 24
	for i := range messages {
		words := []string{"haystack"}
		for j := range 400 {
			words = append(words, fmt.Sprintf("w%dx%d", i, j))
		}
		testnet.SendText(ctx, t, n, alice.UserID, alice.DeviceID, room, strings.Join(words, " "))
	}
	dropTables(t, n, search.TablePostings, search.TableCatchUp)
	n.Close()
	n = testnet.OpenNode(t, testnet.FastNodeConfig(dir))
	if got := found(ctx, t, n, alice.UserID, "haystack"); got != messages {
		t.Fatalf("after reopening: %d of %d long messages found", got, messages)
	}
}
