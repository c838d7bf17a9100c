//go:build unix

package crashtest

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"
)

// catchUpTimeout bounds how long B may take, after its restart, to receive
// what A queued for it: a reconnect, A's peer-up retry and a few
// transactions, generous for a slow shared machine.
const catchUpTimeout = 120 * time.Second

// TestFederationSurvivesSIGKILL runs two `edgenode run` processes federating
// over libp2p QUIC on loopback. While A's user sends a stream of messages
// into a room B's user has joined, B is killed with SIGKILL; A keeps sending,
// so its durable queue to B holds events (some maybe in a transaction B
// received but never acknowledged). B restarts on its data directory, dials
// A, and must end with every one of A's messages exactly once; then B's user
// is heard by A again.
func TestFederationSurvivesSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary; skipped under -short")
	}
	const (
		before    = 5  // messages B sees before the stream starts
		stream    = 60 // messages sent while B is killed and away
		killAfter = 20 // acknowledged sends of the stream before the kill
	)
	bin := buildBinary(t)
	p2p := []string{"--mdns=false", "--p2p-listen", "/ip4/127.0.0.1/udp/0/quic-v1"}
	a := startNode(t, bin, t.TempDir(), 0, p2p...)
	aAddr := a.peerAddr()
	bDir := t.TempDir()
	bArgs := append(append([]string{}, p2p...), "--peer", aAddr)
	b := startNode(t, bin, bDir, 1, bArgs...)

	alice := register(t, a, "alice")
	bob := register(t, b, "bob")
	var room struct {
		RoomID string `json:"room_id"`
	}
	if err := call(a.url, "POST", "/_matrix/client/v3/createRoom", alice.token, map[string]any{"preset": "public_chat"}, &room); err != nil {
		a.fatalf("createRoom: %v", err)
	}
	roomPath := "/_matrix/client/v3/rooms/" + url.PathEscape(room.RoomID)
	join := "/_matrix/client/v3/join/" + url.PathEscape(room.RoomID) + "?server_name=" + url.QueryEscape(serverOf(alice.userID))
	if err := call(b.url, "POST", join, bob.token, map[string]any{}, nil); err != nil {
		b.fatalf("join over federation: %v", err)
	}

	send := func(p *process, token, body string, k int) string {
		var res struct {
			EventID string `json:"event_id"`
		}
		path := fmt.Sprintf("%s/send/m.room.message/fedkill-%d", roomPath, k)
		if err := call(p.url, "PUT", path, token, map[string]any{"msgtype": "m.text", "body": body}, &res); err != nil {
			p.fatalf("send %q: %v", body, err)
		}
		return res.EventID
	}
	var sent []string
	for k := range before {
		sent = append(sent, send(a, alice.token, fmt.Sprintf("before %d", k), k))
	}
	waitForMessages(t, b, roomPath, bob.token, sent, catchUpTimeout)

	for k := range stream {
		if k == killAfter {
			b.kill()
		}
		sent = append(sent, send(a, alice.token, fmt.Sprintf("stream %d", k), before+k))
	}

	b = startNode(t, bin, bDir, 2, bArgs...)
	restarted := time.Now()
	waitForMessages(t, b, roomPath, bob.token, sent, catchUpTimeout)
	t.Logf("B caught up with %d messages %v after its restart answered", len(sent), time.Since(restarted).Round(time.Millisecond))

	var res struct {
		EventID string `json:"event_id"`
	}
	if err := call(b.url, "PUT", roomPath+"/send/m.room.message/back", bob.token, map[string]any{"msgtype": "m.text", "body": "back"}, &res); err != nil {
		b.fatalf("send after restart: %v", err)
	}
	waitForMessages(t, a, roomPath, alice.token, []string{res.EventID}, catchUpTimeout)
	b.stop()
	a.stop()
}

// account is a registered user.
type account struct{ userID, token string }

func register(t *testing.T, p *process, name string) account {
	t.Helper()
	var reg struct {
		UserID      string `json:"user_id"`
		AccessToken string `json:"access_token"`
	}
	if err := call(p.url, "POST", "/_matrix/client/v3/register", "", map[string]any{
		"username": name, "password": name + "-test-pw", "auth": map[string]any{"type": "m.login.dummy"},
	}, &reg); err != nil {
		p.fatalf("register %s: %v", name, err)
	}
	return account{reg.UserID, reg.AccessToken}
}

func serverOf(userID string) string {
	_, server, _ := strings.Cut(userID, ":")
	return server
}

// waitForMessages polls the room's newest messages on p (bounded by timeout)
// until every event of want is there, and fails if any appears twice.
func waitForMessages(t *testing.T, p *process, roomPath, token string, want []string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var page struct {
			Chunk []struct {
				EventID string `json:"event_id"`
			} `json:"chunk"`
		}
		err := call(p.url, "GET", roomPath+"/messages?dir=b&limit=500", token, nil, &page)
		seen := map[string]int{}
		for _, ev := range page.Chunk {
			seen[ev.EventID]++
			if seen[ev.EventID] > 1 {
				p.fatalf("event %s appears twice in /messages", ev.EventID)
			}
		}
		missing := 0
		for _, id := range want {
			if seen[id] == 0 {
				missing++
			}
		}
		if err == nil && missing == 0 {
			return
		}
		if time.Now().After(deadline) {
			p.fatalf("%d of %d messages still missing after %v (last error: %v)", missing, len(want), timeout, err)
		}
		time.Sleep(100 * time.Millisecond) // polling interval of a bounded wait
	}
}
