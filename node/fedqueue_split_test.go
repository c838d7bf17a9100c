package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/edgenode/edgenode/kv"
	"github.com/edgenode/edgenode/node/core"
)

// TestFedQueueShrinkFindsRefusedItems drives the queue as the sender does
// against a destination that refuses, whole, any transaction carrying one
// of two items (a PDU and a to-device EDU): ShrinkTransaction halves what
// it refuses, a refused single item is dropped by acknowledging it. Every
// other item is delivered, in order, within a bounded number of sends; the
// search survives a restart (same transaction in flight, same cap); and
// the cap is gone once deliveries resume.
func TestFedQueueShrinkFindsRefusedItems(t *testing.T) {
	cfg := testConfig(t.TempDir())
	n := openNode(t, cfg)
	defer func() { n.Close() }()
	r := newRemoteServer(t)
	ctx := context.Background()
	d, x := roomWithRemoteMember(t, n, r)
	alice := session(n, "alice")

	var want []string
	var bad string
	for i := range 9 {
		id := send(t, n, alice, d.roomID, fmt.Sprint("m", i))
		if i == 5 {
			bad = id
		} else {
			want = append(want, id)
		}
	}
	for i, body := range []string{"ok-0", "BAD", "ok-1"} {
		err := n.SendToDevice(ctx, alice.UserID, alice.DeviceID, "x.test", fmt.Sprint("td", i),
			map[string]map[string]json.RawMessage{x: {"DEV": json.RawMessage(`{"v":"` + body + `"}`)}})
		if err != nil {
			t.Fatal(err)
		}
	}
	refuses := func(txn *OutboundTxn) bool {
		if slices.Contains(txn.EventIDs, bad) {
			return true
		}
		return slices.ContainsFunc(txn.EDUs, func(e OutboundEDU) bool { return strings.Contains(string(e.Content), "BAD") })
	}

	const limit = 50
	var got []string
	var gotEDUs []string
	dropped := 0
	restarted := false
	txn, err := n.NextTransaction(ctx, r.name, limit)
	sends := 0
	for ; err == nil && txn != nil; sends++ {
		if sends == 40 {
			t.Fatalf("still sending after %d transactions; delivered %d of %d", sends, len(got), len(want))
		}
		if !refuses(txn) {
			got = append(got, txn.EventIDs...)
			for _, e := range txn.EDUs {
				gotEDUs = append(gotEDUs, string(e.Content))
			}
			txn, err = n.AckAndNext(ctx, r.name, txn, limit)
			continue
		}
		if len(txn.EventIDs)+len(txn.EDUs) == 1 {
			dropped++
			txn, err = n.AckAndNext(ctx, r.name, txn, limit)
			continue
		}
		shrunk, err2 := n.ShrinkTransaction(ctx, r.name, txn, limit)
		if err2 != nil {
			t.Fatalf("ShrinkTransaction: %v", err2)
		}
		if items, was := len(shrunk.EventIDs)+len(shrunk.EDUs), len(txn.EventIDs)+len(txn.EDUs); items != was/2 || shrunk.TxnID == txn.TxnID {
			t.Fatalf("shrunk to %d items (ID %s), from %d (ID %s)", items, shrunk.TxnID, was, txn.TxnID)
		}
		txn = shrunk
		if !restarted {
			// The search is durable: the same transaction and cap after a
			// restart.
			restarted = true
			split := destSplit(t, n, r.name)
			if err := n.Close(); err != nil {
				t.Fatal(err)
			}
			n = openNode(t, cfg)
			again, err := n.NextTransaction(ctx, r.name, limit)
			if err != nil || again == nil || again.TxnID != txn.TxnID || !slices.Equal(again.EventIDs, txn.EventIDs) || len(again.EDUs) != len(txn.EDUs) {
				t.Fatalf("after restart %+v, %v; want %+v", again, err, txn)
			}
			if s := destSplit(t, n, r.name); s != split || s == 0 {
				t.Fatalf("split cap %d after restart, %d before", s, split)
			}
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("delivered %v, want %v", got, want)
	}
	if len(gotEDUs) != 2 || !strings.Contains(gotEDUs[0], "ok-0") || !strings.Contains(gotEDUs[1], "ok-1") {
		t.Fatalf("delivered EDUs %q, want ok-0 and ok-1", gotEDUs)
	}
	if dropped != 2 {
		t.Fatalf("dropped %d items, want 2", dropped)
	}
	t.Logf("%d sends for %d PDUs and 3 EDUs", sends, len(want)+1)

	// Deliveries widen the cap until it is gone.
	for i := range 8 {
		send(t, n, alice, d.roomID, fmt.Sprint("later", i))
		txn, err := n.NextTransaction(ctx, r.name, limit)
		if err != nil || txn == nil {
			t.Fatalf("NextTransaction: %v, %v", txn, err)
		}
		if err := n.ackTransaction(ctx, r.name, txn); err != nil {
			t.Fatal(err)
		}
	}
	if s := destSplit(t, n, r.name); s != 0 {
		t.Fatalf("split cap %d after 8 deliveries, want none", s)
	}
}

// TestFedQueueShrinkSingleItem: a transaction of one item cannot be split.
func TestFedQueueShrinkSingleItem(t *testing.T) {
	n := newTestNode(t)
	r := newRemoteServer(t)
	ctx := context.Background()
	d, _ := roomWithRemoteMember(t, n, r)
	send(t, n, session(n, "alice"), d.roomID, "one")
	txn, err := n.NextTransaction(ctx, r.name, 50)
	if err != nil || txn == nil {
		t.Fatalf("NextTransaction: %v, %v", txn, err)
	}
	if _, err := n.ShrinkTransaction(ctx, r.name, txn, 50); !errors.Is(err, core.ErrInvalidParam) {
		t.Fatalf("ShrinkTransaction of one item: %v, want ErrInvalidParam", err)
	}
}

func destSplit(t *testing.T, n *Node, dest string) int {
	t.Helper()
	var rec fedDestRecord
	err := n.DB.View(func(tx *kv.Txn) error {
		var err error
		rec, err = loadFedDest(tx, dest)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return rec.Split
}
