package keybackup

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
)

// TestLargestUploadFitsTransactions: an upload at every bound at once
// (MaxKeysPerRequest keys, IDs of MaxIDBytes, values just under the value
// threshold, where they count whole in a transaction) is stored on the
// phone profile, whose transactions are the smallest.
func TestLargestUploadFitsTransactions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, b := open(t, t.TempDir())
	const user = "@a:example.org"
	v, err := b.CreateKeyBackup(ctx, user, "alg", json.RawMessage(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	room := "!" + strings.Repeat("r", MaxIDBytes-1)
	value := json.RawMessage(`{"first_message_index":0,"forwarded_count":0,"is_verified":true,"session_data":{"c":"` + strings.Repeat("x", 900) + `"}}`)
	up := RoomKeysUpload{room: {}}
	for i := range MaxKeysPerRequest {
		up[room][fmt.Sprintf("%04d%s", i, strings.Repeat("s", MaxIDBytes-4))] = value
	}
	counts, err := b.PutRoomKeys(ctx, user, v, up)
	if err != nil || counts.Count != MaxKeysPerRequest {
		t.Fatalf("put: %+v, %v; want count %d", counts, err, MaxKeysPerRequest)
	}
}

// TestConcurrentUploads: uploads to one backup at once, overlapping, lose
// no key and count each session once.
func TestConcurrentUploads(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, b := open(t, t.TempDir())
	const user, writers, each = "@a:example.org", 6, 40
	v, err := b.CreateKeyBackup(ctx, user, "alg", json.RawMessage(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			up := RoomKeysUpload{"!r:example.org": {}}
			// Half the sessions are every writer's, half its own.
			for i := range each {
				id := fmt.Sprintf("shared%d", i)
				if i%2 == 1 {
					id = fmt.Sprintf("w%d-%d", w, i)
				}
				up["!r:example.org"][id] = json.RawMessage(fmt.Sprintf(`{"first_message_index":%d,"forwarded_count":0,"is_verified":false,"session_data":{}}`, w))
			}
			if _, err := b.PutRoomKeys(ctx, user, v, up); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	want := each/2 + writers*each/2
	info, err := b.KeyBackupVersion(ctx, user, v)
	if err != nil || info.Count != want {
		t.Fatalf("version %+v, %v; want count %d", info, err, want)
	}
	// Every shared session kept the best upload: writer 0's index 0.
	key, err := b.RoomKey(ctx, user, v, "!r:example.org", "shared0")
	if err != nil || !strings.Contains(string(key), `"first_message_index":0,`) {
		t.Fatalf("shared0 is %s (%v), want writer 0's", key, err)
	}
}
