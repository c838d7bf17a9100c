package core

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/edgenode/edgenode/kv"
)

// TestDataDirCheck: the periodic check finds the database directory made
// unwritable (chmod, for a non-root user) or replaced (a file where it
// was, which stops root too) and faults the storage: sends fail with
// ErrFaulted instead of going to files nobody will find again, and the
// node still closes.
func TestDataDirCheck(t *testing.T) {
	for _, tc := range []struct {
		name     string
		breakDir func(t *testing.T, dbDir string) (restore func())
	}{
		{"chmod", func(t *testing.T, dbDir string) func() {
			if os.Geteuid() == 0 {
				t.Skip("root writes through chmod 0500")
			}
			if err := os.Chmod(dbDir, 0o500); err != nil {
				t.Fatal(err)
			}
			return func() { _ = os.Chmod(dbDir, 0o700) }
		}},
		{"replaced", func(t *testing.T, dbDir string) func() {
			if err := os.Rename(dbDir, dbDir+".moved"); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(dbDir, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			return func() {
				_ = os.Remove(dbDir)
				_ = os.Rename(dbDir+".moved", dbDir)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t.TempDir())
			cfg.NoSyncWrites = true
			cfg.DataDirCheckInterval = 20 * time.Millisecond
			n := openNode(t, cfg)
			t.Cleanup(func() { n.Close() })
			alice, _, roomID := publicRoom(t, n, "")
			restore := tc.breakDir(t, filepath.Join(cfg.DataDir, "db"))
			defer restore()
			select {
			case <-n.StorageFaulted():
			case <-time.After(30 * time.Second):
				t.Fatal("no storage fault 30 s after the data directory broke")
			}
			if !errors.Is(n.StorageFault(), kv.ErrFaulted) {
				t.Fatalf("StorageFault: %v", n.StorageFault())
			}
			c, _ := json.Marshal(map[string]string{"msgtype": "m.text", "body": "lost?"})
			_, err := n.SendEvent(context.Background(), SendRequest{Sender: alice.UserID, DeviceID: alice.DeviceID, RoomID: roomID, Type: "m.room.message", Content: c})
			if !errors.Is(err, kv.ErrFaulted) {
				t.Fatalf("send after the fault: %v, want ErrFaulted", err)
			}
			restore()
			_ = n.Close() // bounded by kv after a fault
		})
	}
}
