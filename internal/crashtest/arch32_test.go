//go:build unix

package crashtest

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	// bulkBytes is how much message content the 32-bit test writes: more
	// than 64 MiB, so many memtables flush and compact on disk.
	bulkBytes = 66 << 20
	// bulkSenders send concurrently, so the node commits in groups.
	bulkSenders = 8
	// smallBody and bigBody are the message sizes: ~3 KiB as in the
	// 32-bit finding, and 60 KiB (below the 64 KiB event limit) so the
	// volume is reached in about 2,000 sends.
	smallBody = 3 << 10
	bigBody   = 60 << 10
)

// Test32BitBulkWriteSurvivesRestart writes more than 64 MiB of messages
// through a real node's client API, stops the node (cleanly with SIGTERM,
// or with SIGKILL), restarts it on the same data directory and requires
// every acknowledged message back, by ID and in /messages.
//
// It is the regression test for 32-bit data loss (issue 13, finding 7):
// ristretto's z.Allocator loses its place once its first buffer fills on
// 32-bit, and Badger's table builder then overwrote its own blocks. It is
// meant for `make gotest386` (GOARCH=386 CGO_ENABLED=0); on a 64-bit build
// it is skipped, as TestKillRestartKeepsAcknowledgedEvents covers the
// 64-bit crash path and the bulk run would only lengthen `go test -race`.
func Test32BitBulkWriteSurvivesRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary; skipped under -short")
	}
	if strconv.IntSize != 32 {
		t.Skip("32-bit only: run with GOARCH=386 CGO_ENABLED=0 (make gotest386)")
	}
	tests := []struct {
		name string
		stop func(*process)
	}{
		{"clean stop", (*process).stop},
		{"SIGKILL", (*process).kill},
	}
	bin := buildBinary(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dataDir := t.TempDir()
			p := startNode(t, bin, dataDir, 0)
			alice := register(t, p, "alice")
			var room struct {
				RoomID string `json:"room_id"`
			}
			if err := call(p.url, "POST", "/_matrix/client/v3/createRoom", alice.token, map[string]any{"name": "bulk"}, &room); err != nil {
				p.fatalf("createRoom: %v", err)
			}
			roomPath := "/_matrix/client/v3/rooms/" + url.PathEscape(room.RoomID)

			start := time.Now()
			acked := sendBulk(t, p, roomPath, alice.token)
			t.Logf("%d messages acknowledged in %v", len(acked), time.Since(start).Round(time.Millisecond))
			start = time.Now()
			tt.stop(p)
			p = startNode(t, bin, dataDir, 1)
			t.Logf("stopped and restarted in %v", time.Since(start).Round(time.Millisecond))
			start = time.Now()
			checkBulk(p, roomPath, alice.token, acked)
			t.Logf("checked in %v", time.Since(start).Round(time.Millisecond))
			p.stop()
		})
	}
}

// sendBulk sends messages from bulkSenders goroutines until bulkBytes of
// bodies are acknowledged, every other one ~3 KiB and the rest 60 KiB, each
// body unique. Any failed send fails the test.
func sendBulk(t *testing.T, p *process, roomPath, token string) []ackedEvent {
	t.Helper()
	perSender := bulkBytes / bulkSenders
	var (
		mu    sync.Mutex
		acked []ackedEvent
		errs  []error
		wg    sync.WaitGroup
	)
	for s := range bulkSenders {
		wg.Go(func() {
			sent := 0
			for i := 0; sent < perSender; i++ {
				size := smallBody
				if i%2 == 1 {
					size = bigBody
				}
				head := fmt.Sprintf("sender %d msg %d ", s, i)
				body := head + strings.Repeat(string(rune('a'+i%26)), size-len(head))
				txn := fmt.Sprintf("bulk-s%d-m%d", s, i)
				var res struct {
					EventID string `json:"event_id"`
				}
				err := call(p.url, "PUT", roomPath+"/send/m.room.message/"+txn, token,
					map[string]any{"msgtype": "m.text", "body": body}, &res)
				mu.Lock()
				if err == nil && res.EventID == "" {
					err = fmt.Errorf("send %s: 200 without event_id", txn)
				}
				if err != nil {
					errs = append(errs, err)
				} else {
					acked = append(acked, ackedEvent{id: res.EventID, body: body})
				}
				mu.Unlock()
				if err != nil {
					return
				}
				sent += size
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		p.fatalf("bulk send failed: %v", errs[0])
	}
	return acked
}

// checkBulk requires every acknowledged message to be readable by ID with
// its body, and once in the room's timeline read back through /messages.
// Like checkEvents, but naming a message by its first words: the bodies are
// too long to print.
func checkBulk(p *process, roomPath, token string, acked []ackedEvent) {
	p.t.Helper()
	for _, ev := range acked {
		var got struct {
			Content struct {
				Body string `json:"body"`
			} `json:"content"`
		}
		if err := call(p.url, "GET", roomPath+"/event/"+url.PathEscape(ev.id), token, nil, &got); err != nil {
			p.fatalf("acknowledged message %q (%s) lost: %.300v", head(ev.body), ev.id, err)
		}
		if got.Content.Body != ev.body {
			p.fatalf("message %s came back as %q, want %q", ev.id, head(got.Content.Body), head(ev.body))
		}
	}
	seen := map[string]int{}
	for _, e := range p.walkTimeline(roomPath, token) {
		seen[e.EventID]++
	}
	missing := 0
	for _, ev := range acked {
		if n := seen[ev.id]; n != 1 {
			missing++
			if missing == 1 {
				p.t.Errorf("/messages has acknowledged %q (%s) %d times, want once", head(ev.body), ev.id, n)
			}
		}
	}
	if missing > 0 {
		p.fatalf("%d of %d acknowledged messages not exactly once in /messages", missing, len(acked))
	}
}

// head is the start of a message body, which names it.
func head(body string) string {
	if i := strings.Index(body, " msg "); i >= 0 {
		if j := strings.IndexByte(body[i+5:], ' '); j >= 0 {
			return body[:i+5+j]
		}
	}
	if len(body) > 40 {
		return body[:40] + "..."
	}
	return body
}
