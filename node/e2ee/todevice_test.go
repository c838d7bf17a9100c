package e2ee

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"testing"

	"github.com/edgenode/edgenode/kv"
	"github.com/edgenode/edgenode/node/core"
)

// newTestE2EE opens a room core on a fresh directory (the phone profile,
// as the node's tests use) and the E2EE concern on it, without the rest
// of a node: the tests here reach only the inboxes, which need no host.
func newTestE2EE(t testing.TB) *E2EE {
	t.Helper()
	c, err := core.Open(context.Background(), core.Config{
		DataDir: t.TempDir(), OpenRegistration: true, StorageProfile: "phone",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatalf("core.Open: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	n, err := Open(c, nil)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return n
}

func body(s string) json.RawMessage { return json.RawMessage(fmt.Sprintf(`{"body":%q}`, s)) }

// inbox returns the bodies of everything in a device's inbox, oldest first.
func inbox(t testing.TB, n *E2EE, userID, deviceID string) []string {
	t.Helper()
	evs, _, err := n.ToDeviceSince(context.Background(), userID, deviceID, 0, 10000)
	if err != nil {
		t.Fatalf("inbox: %v", err)
	}
	out := []string{}
	for _, ev := range evs {
		var c struct{ Body string }
		if err := json.Unmarshal(ev.Content, &c); err != nil {
			t.Fatalf("content %s: %v", ev.Content, err)
		}
		out = append(out, c.Body)
	}
	return out
}

// countPrefix counts the keys under a prefix.
func countPrefix(t testing.TB, n *E2EE, prefix []byte) int {
	t.Helper()
	count, err := n.DB.Count(prefix)
	if err != nil {
		t.Fatalf("count keys under %q: %v", prefix, err)
	}
	return count
}

func inboxCountOf(t testing.TB, n *E2EE, userID, deviceID string) uint64 {
	t.Helper()
	var c uint64
	err := n.DB.View(func(tx *kv.Txn) error {
		var err error
		c, err = inboxCount(tx, userID, deviceID)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// fillInbox queues count messages for a device in one commit, as many
// sends would, without the cost of one synchronous commit each.
func fillInbox(t testing.TB, n *E2EE, userID, deviceID string, count int) {
	t.Helper()
	_, err := n.toDevice.Commit(count, func(tx *kv.Txn, first uint64) error {
		for i := range count {
			ev := ToDeviceEvent{Sender: "@s:x", Type: "m.test", Content: body(fmt.Sprint(i))}
			if err := tx.SetJSON(toDeviceKey(userID, deviceID, first+uint64(i)), ev); err != nil {
				return err
			}
		}
		return n.growInbox(tx, userID, deviceID, count)
	})
	if err != nil {
		t.Fatalf("fill inbox: %v", err)
	}
}

func TestToDeviceInboxBoundsAndBatches(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	n := newTestE2EE(t)
	bob := struct{ UserID string }{"@bob:" + n.ServerName()} // the inboxes need no account

	// Acknowledging more than one batch deletes them all.
	fillInbox(t, n, bob.UserID, "B1", ackBatch*2+10)
	if err := n.AckToDevice(ctx, bob.UserID, "B1", n.ToDevicePosition()); err != nil {
		t.Fatal(err)
	}
	if got := countPrefix(t, n, toDevicePrefix(bob.UserID, "B1")); got != 0 {
		t.Fatalf("%d messages left after acknowledging all", got)
	}

	// Past maxInbox the oldest messages go.
	fillInbox(t, n, bob.UserID, "B1", maxInbox-5)
	fillInbox(t, n, bob.UserID, "B1", 10)
	if got, c := countPrefix(t, n, toDevicePrefix(bob.UserID, "B1")), inboxCountOf(t, n, bob.UserID, "B1"); got != maxInbox || c != maxInbox {
		t.Fatalf("inbox holds %d (count %d), want %d", got, c, maxInbox)
	}
	if got := inbox(t, n, bob.UserID, "B1"); got[0] != "5" || got[len(got)-1] != "9" {
		t.Fatalf("inbox runs %s..%s, want 5..9 (the oldest five dropped)", got[0], got[len(got)-1])
	}
}
