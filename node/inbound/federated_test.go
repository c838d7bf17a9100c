package inbound

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestInboundTxnOutlivesSender: a transaction whose sender stops waiting
// (its request cancelled mid-way) is processed to the end and its response
// stored, so the retry gets it without processing again; Close ends such
// work.
func TestInboundTxnOutlivesSender(t *testing.T) {
	n := newTestInbound(t, nil)
	reqCtx, giveUp := context.WithCancel(context.Background())
	started, release := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		_, err := n.InboundTxn(reqCtx, "origin", "slow", func(ctx context.Context) ([]byte, bool, error) {
			close(started)
			<-release
			if err := ctx.Err(); err != nil {
				return nil, false, err // cut short: nothing would be stored
			}
			return []byte(`{"pdus":{}}`), true, nil
		})
		done <- err
	}()
	<-started
	giveUp()
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("the abandoned transaction: %v", err)
	}
	resp, err := n.InboundTxn(context.Background(), "origin", "slow", func(context.Context) ([]byte, bool, error) {
		t.Error("the retry processed the transaction again")
		return []byte(`{}`), true, nil
	})
	if err != nil || string(resp) != `{"pdus":{}}` {
		t.Fatalf("retry: %s, %v", resp, err)
	}

	// Close ends work no caller waits for.
	started = make(chan struct{})
	go func() {
		_, err := n.InboundTxn(context.Background(), "origin", "forever", func(ctx context.Context) ([]byte, bool, error) {
			close(started)
			<-ctx.Done()
			return nil, false, ctx.Err()
		})
		done <- err
	}()
	<-started
	n.Close()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("work cut short by Close reported success")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Close did not end a transaction in progress")
	}
}

func TestInboundTxn(t *testing.T) {
	n := newTestInbound(t, nil)
	ctx := context.Background()
	calls := 0
	process := func(context.Context) ([]byte, bool, error) { calls++; return []byte(`{"n":1}`), true, nil }
	for range 2 {
		resp, err := n.InboundTxn(ctx, "origin", "t1", process)
		if err != nil || string(resp) != `{"n":1}` || calls != 1 {
			t.Fatalf("InboundTxn = %s, %v; calls %d", resp, err, calls)
		}
	}
	// An error is not remembered.
	if _, err := n.InboundTxn(ctx, "origin", "t2", func(context.Context) ([]byte, bool, error) { return nil, false, errors.New("boom") }); err == nil {
		t.Fatal("error not returned")
	}
	if _, err := n.InboundTxn(ctx, "origin", "t2", process); err != nil || calls != 2 {
		t.Fatalf("retry after error: %v, calls %d", err, calls)
	}
	// Retention: after InboundTxnRetention more, t1 is forgotten; the same ID
	// from another origin is distinct.
	if _, err := n.InboundTxn(ctx, "other", "t1", process); err != nil || calls != 3 {
		t.Fatalf("other origin: %v, calls %d", err, calls)
	}
	for i := range InboundTxnRetention {
		if _, err := n.InboundTxn(ctx, "origin", "fill"+string(rune('a'+i%26))+strings.Repeat("x", i/26), process); err != nil {
			t.Fatal(err)
		}
	}
	before := calls
	if _, err := n.InboundTxn(ctx, "origin", "t1", process); err != nil || calls != before+1 {
		t.Fatalf("t1 after retention: calls %d -> %d", before, calls)
	}
	if got := countKeys(t, n, tInboundTxn); got > InboundTxnRetention+1 {
		t.Fatalf("%d txns remembered, want at most %d", got, InboundTxnRetention+1)
	}

	// A transaction that changed nothing is answered the same way again
	// from memory, and never stored.
	stored := countKeys(t, n, tInboundTxn)
	idle := func(context.Context) ([]byte, bool, error) { calls++; return []byte(`{"n":2}`), false, nil }
	before = calls
	for range 2 {
		if resp, err := n.InboundTxn(ctx, "stranger", "nothing", idle); err != nil || string(resp) != `{"n":2}` || calls != before+1 {
			t.Fatalf("InboundTxn without effect = %s, %v; calls %d -> %d", resp, err, before, calls)
		}
	}
	if got := countKeys(t, n, tInboundTxn); got != stored {
		t.Fatalf("a transaction without effect was stored: %d -> %d records", stored, got)
	}
}
