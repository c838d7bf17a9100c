package keybackup

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"testing"

	"github.com/edgenode/edgenode/kv"
	"github.com/edgenode/edgenode/node/core"
)

// open opens a room core on dir and its key backup store; both close when
// the test ends unless closed before.
func open(t *testing.T, dir string) (*core.Node, *KeyBackups) {
	t.Helper()
	// testnet.FastNodeConfig, which imports node, which imports this.
	cfg := core.Config{DataDir: dir, StorageProfile: "phone", NoSyncWrites: true, Logger: slog.New(slog.DiscardHandler)}
	c, err := core.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	b, err := Open(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	return c, b
}

// fill puts n keys, spread over three rooms, into userID's version.
func fill(t *testing.T, b *KeyBackups, userID, version string, n int) {
	t.Helper()
	for done := 0; done < n; {
		up := RoomKeysUpload{}
		for i := 0; i < MaxKeysPerRequest && done < n; i, done = i+1, done+1 {
			room := fmt.Sprintf("!r%d:example.org", done%3)
			if up[room] == nil {
				up[room] = map[string]json.RawMessage{}
			}
			up[room][fmt.Sprintf("session%06d", done)] = json.RawMessage(`{"first_message_index":0,"forwarded_count":0,"is_verified":false,"session_data":{"ciphertext":"c"}}`)
		}
		if _, err := b.PutRoomKeys(context.Background(), userID, version, up); err != nil {
			t.Fatal(err)
		}
	}
}

// stored counts the keys in the key table under userID and the purge marks.
func stored(t *testing.T, db *kv.DB, userID string) (keys, marks int) {
	t.Helper()
	err := db.View(func(tx *kv.Txn) error {
		count := func(prefix []byte, n *int) error {
			return tx.Each(kv.Scan{Prefix: prefix, KeysOnly: true}, func(_, _ []byte) (bool, error) { *n++; return true, nil })
		}
		if err := count(kv.Key(tKey, userID), &keys); err != nil {
			return err
		}
		return count(purgePrefix(), &marks)
	})
	if err != nil {
		t.Fatal(err)
	}
	return keys, marks
}

// TestReadAndDeleteInBatches: a backup larger than a read page and a
// delete batch is read whole, counted, and deleted whole, by room and with
// its version.
func TestReadAndDeleteInBatches(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c, b := open(t, t.TempDir())
	const user, total = "@a:example.org", 2*deleteBatch + readPage + 7
	v, err := b.CreateKeyBackup(ctx, user, "alg", json.RawMessage(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	fill(t, b, user, v, total)
	if info, err := b.KeyBackupVersion(ctx, user, ""); err != nil || info.Count != total {
		t.Fatalf("version %+v, %v; want count %d", info, err, total)
	}
	read, rooms := 0, map[string]int{}
	if err := b.RoomKeys(ctx, user, v, "", func(room, _ string, _ json.RawMessage) error { read++; rooms[room]++; return nil }); err != nil {
		t.Fatal(err)
	}
	if read != total || len(rooms) != 3 {
		t.Fatalf("read %d keys in %d rooms, want %d in 3", read, len(rooms), total)
	}
	counts, err := b.DeleteRoomKeys(ctx, user, v, "!r0:example.org", "")
	if err != nil || counts.Count != total-rooms["!r0:example.org"] {
		t.Fatalf("after deleting a room: %+v, %v; want count %d", counts, err, total-rooms["!r0:example.org"])
	}
	// The version's byte count is what its keys take.
	var rec versionRecord
	var sum int64
	err = c.DB.View(func(tx *kv.Txn) error {
		if err := tx.GetJSON(versionKey(user, 1), &rec); err != nil {
			return err
		}
		return tx.Each(kv.Scan{Prefix: keysPrefix(user, 1)}, func(_, val []byte) (bool, error) { sum += int64(len(val)); return true, nil })
	})
	if err != nil || rec.Bytes != sum || sum == 0 {
		t.Fatalf("the version counts %d bytes, its keys take %d (%v)", rec.Bytes, sum, err)
	}
	if err := b.DeleteKeyBackup(ctx, user, v); err != nil {
		t.Fatal(err)
	}
	if keys, marks := stored(t, c.DB, user); keys != 0 || marks != 0 {
		t.Fatalf("%d keys and %d purge marks left after deleting the version", keys, marks)
	}
}

// TestPurgeResumesAtStart: a version deleted by a run that stopped before
// its keys were all deleted has them deleted at the next start.
func TestPurgeResumesAtStart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	c, b := open(t, dir)
	const user = "@a:example.org"
	v, err := b.CreateKeyBackup(ctx, user, "alg", json.RawMessage(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	fill(t, b, user, v, deleteBatch+10)
	// What DeleteKeyBackup commits before it purges: the run stops there.
	if err := c.DB.Update(func(tx *kv.Txn) error { return dropVersion(tx, user, 1) }); err != nil {
		t.Fatal(err)
	}
	if keys, marks := stored(t, c.DB, user); keys != deleteBatch+10 || marks != 1 {
		t.Fatalf("before the restart: %d keys, %d marks", keys, marks)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	c, _ = open(t, dir)
	if keys, marks := stored(t, c.DB, user); keys != 0 || marks != 0 {
		t.Fatalf("after the restart: %d keys and %d purge marks left", keys, marks)
	}
}
