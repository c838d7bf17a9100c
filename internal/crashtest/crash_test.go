//go:build unix

package crashtest

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"
)

const (
	// cycles is how many times the node is killed and restarted.
	cycles = 4
	// senders write concurrently, so several sends are in flight at the kill.
	senders = 3
	// maxSendsPerCycle bounds each sender's loop in case the kill comes late.
	maxSendsPerCycle = 2000
	// minKillDelay and maxKillDelay bound the random time between the start
	// of sending and the SIGKILL.
	minKillDelay = 50 * time.Millisecond
	maxKillDelay = 1500 * time.Millisecond
)

// ackedEvent is a send the node answered 200: it must survive any crash.
type ackedEvent struct {
	id, body string
}

// TestKillRestartKeepsAcknowledgedEvents kills the node with SIGKILL at a
// random moment while clients send messages, restarts it on the same data
// directory, and checks the database opens and every acknowledged event is
// there (with the access token, account and room it depends on). It repeats
// this several times, then requires a clean SIGTERM shutdown.
//
// Reproduce a run with EDGENODE_CRASH_SEED=<seed printed in the log>.
func TestKillRestartKeepsAcknowledgedEvents(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary; skipped under -short")
	}
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("EDGENODE_CRASH_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("EDGENODE_CRASH_SEED: %v", err)
		}
	}
	t.Logf("seed %d (rerun with EDGENODE_CRASH_SEED=%d)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))

	bin := buildBinary(t)
	dataDir := t.TempDir()
	p := startNode(t, bin, dataDir, 0)

	var reg struct {
		UserID      string `json:"user_id"`
		AccessToken string `json:"access_token"`
	}
	if err := call(p.url, "POST", "/_matrix/client/v3/register", "", map[string]any{
		"username": "crash", "password": "crash-test-pw", "auth": map[string]any{"type": "m.login.dummy"},
	}, &reg); err != nil {
		p.fatalf("register: %v", err)
	}
	token := reg.AccessToken
	var room struct {
		RoomID string `json:"room_id"`
	}
	if err := call(p.url, "POST", "/_matrix/client/v3/createRoom", token, map[string]any{"name": "crash test"}, &room); err != nil {
		p.fatalf("createRoom: %v", err)
	}
	roomPath := "/_matrix/client/v3/rooms/" + url.PathEscape(room.RoomID)

	var acked []ackedEvent
	for cycle := range cycles {
		delay := minKillDelay + time.Duration(rng.Int64N(int64(maxKillDelay-minKillDelay)))
		got, unexpected := sendUntilKilled(p, roomPath, token, cycle, delay)
		if unexpected != nil {
			p.fatalf("cycle %d: send failed before the kill: %v", cycle, unexpected)
		}
		t.Logf("cycle %d: killed after %v; %d sends acknowledged", cycle, delay, len(got))
		acked = append(acked, got...)

		p = startNode(t, bin, dataDir, cycle+1)
		checkEvents(t, p, roomPath, token, acked)
	}
	p.stop()
	if len(acked) == 0 {
		t.Fatal("no send was acknowledged in any cycle; the test checked nothing")
	}
}

// sendUntilKilled runs senders that send messages until the node dies, kills
// it with SIGKILL after delay, and returns every send answered 200. A send
// that fails before the kill is returned as unexpected.
func sendUntilKilled(p *process, roomPath, token string, cycle int, delay time.Duration) (acked []ackedEvent, unexpected error) {
	var (
		mu     sync.Mutex
		killed = make(chan struct{})
		wg     sync.WaitGroup
	)
	for s := range senders {
		wg.Go(func() {
			for i := range maxSendsPerCycle {
				body := fmt.Sprintf("cycle %d sender %d msg %d", cycle, s, i)
				txn := fmt.Sprintf("c%d-s%d-m%d", cycle, s, i)
				var res struct {
					EventID string `json:"event_id"`
				}
				err := call(p.url, "PUT", roomPath+"/send/m.room.message/"+txn, token,
					map[string]any{"msgtype": "m.text", "body": body}, &res)
				mu.Lock()
				switch {
				case err == nil && res.EventID != "":
					acked = append(acked, ackedEvent{id: res.EventID, body: body})
				case err == nil:
					unexpected = errors.Join(unexpected, fmt.Errorf("send %s: 200 without event_id", txn))
				default:
					select {
					case <-killed: // expected: the node is gone
					default:
						unexpected = errors.Join(unexpected, err)
					}
				}
				stop := err != nil || unexpected != nil
				mu.Unlock()
				if stop {
					return
				}
			}
		})
	}
	time.Sleep(delay) // not synchronisation: the random moment of the crash
	mu.Lock()
	close(killed) // before the kill, so senders know errors from now on are expected
	mu.Unlock()
	p.kill()
	wg.Wait()
	return acked, unexpected
}

// checkEvents requires every acknowledged event to be readable by ID with its
// body, and once in the room's timeline read back through /messages. It uses
// the token issued before the crashes, so tokens must survive too.
func checkEvents(t *testing.T, p *process, roomPath, token string, acked []ackedEvent) {
	t.Helper()
	for _, ev := range acked {
		var got struct {
			EventID string `json:"event_id"`
			Content struct {
				Body string `json:"body"`
			} `json:"content"`
		}
		if err := call(p.url, "GET", roomPath+"/event/"+url.PathEscape(ev.id), token, nil, &got); err != nil {
			p.fatalf("acknowledged event %s (%q) lost after SIGKILL: %v", ev.id, ev.body, err)
		}
		if got.EventID != ev.id || got.Content.Body != ev.body {
			p.fatalf("event %s came back as %s with body %q, want body %q", ev.id, got.EventID, got.Content.Body, ev.body)
		}
	}

	// Page back through the whole timeline: each acknowledged body once.
	seen := map[string]int{}
	for _, e := range p.walkTimeline(roomPath, token) {
		if e.Type == "m.room.message" {
			seen[e.Content.Body]++
		}
	}
	for _, ev := range acked {
		if n := seen[ev.body]; n != 1 {
			p.fatalf("/messages has acknowledged %q %d times, want once", ev.body, n)
		}
	}
}
