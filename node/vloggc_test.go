package node

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/edgenode/edgenode/node/core"
	"github.com/matrix-org/gomatrixserverlib/spec"
)

// valueLogBytes is the disk the database's value-log files take (allocated
// blocks, as du counts them).
func valueLogBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var total int64
	err := filepath.WalkDir(filepath.Join(dir, "db"), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(d.Name(), ".vlog") {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		total += info.Sys().(*syscall.Stat_t).Blocks * 512
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return total
}

// TestValueLogGCAfterRedactions fills a room with large messages (their JSON
// above the value threshold, so in the value log), redacts nine in ten, and
// expects the node's value-log GC to bring the value log's size on disk
// down: without a GC caller it only grows.
func TestValueLogGCAfterRedactions(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	cfg := testConfig(dir)
	cfg.NoSyncWrites = true
	cfg.ValueLogGCInterval = 20 * time.Millisecond
	n := openNode(t, cfg)
	defer func() { n.Close() }()
	alice, _, roomID := publicRoom(t, n, "")

	const messages = 1500
	filler := strings.Repeat("a large message, ", 200) // 3,400 bytes: the value log
	var ids []string
	for i := range messages {
		ids = append(ids, send(t, n, alice, roomID, fmt.Sprintf("%d %s", i, filler)))
	}
	for i, id := range ids {
		if i%10 == 0 {
			continue // one in ten stays
		}
		if _, err := n.SendEvent(ctx, core.SendRequest{Sender: alice.UserID, DeviceID: alice.DeviceID, RoomID: roomID,
			Type: spec.MRoomRedaction, Content: json.RawMessage(`{}`), Redacts: id}); err != nil {
			t.Fatalf("redact %s: %v", id, err)
		}
	}
	peak := valueLogBytes(t, dir)
	t.Logf("value log after the load and the redactions: %d bytes", peak)
	// Badger learns what is garbage when a compaction drops the old
	// versions, so chat goes on (small messages, stored in the LSM tree)
	// until one has, and the GC has rewritten the value log. The bound is
	// half of what the messages wrote: without a GC the value log keeps all
	// of it, nine tenths of it garbage; with one it falls to the survivors
	// and the files being written (1.1 to 1.9 MB seen). It is not a share
	// of peak, which the GC, running all along, may already have cut.
	written := messages * len(filler)
	const chat = 10000
	for i := range chat {
		if i%50 == 0 {
			if now := valueLogBytes(t, dir); now < int64(written/2) {
				t.Logf("value log after %d more messages: %d bytes", i, now)
				break
			}
		}
		if i == chat-1 {
			t.Fatalf("value log still %d bytes after %d more messages (%d before, %d written)", valueLogBytes(t, dir), chat, peak, written)
		}
		send(t, n, alice, roomID, fmt.Sprintf("chat %d", i))
	}
	// The survivors still read back whole.
	for i := 0; i < messages; i += 10 {
		ev, err := n.Event(ctx, alice.UserID, ids[i])
		if err != nil || !strings.Contains(string(ev.PDU.Content()), filler) {
			t.Fatalf("message %d after GC: %v", i, err)
		}
	}
}
