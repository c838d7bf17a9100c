package app

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/edgenode/edgenode/internal/testnet"
	"github.com/edgenode/edgenode/node"
	"github.com/edgenode/edgenode/node/core"
)

// stoppable is an app a test may stop and start again on the same data
// directory; the test's cleanup closes whichever instance is running.
type stoppable struct {
	*App
	dir string
	t   *testing.T
}

// startStoppable starts an app with federation over libp2p QUIC on loopback
// on dir, dialling peers.
func startStoppable(t *testing.T, dir string, peers []string) *stoppable {
	t.Helper()
	s := &stoppable{dir: dir, t: t}
	s.start(peers)
	t.Cleanup(func() {
		if s.App != nil {
			s.stop()
		}
	})
	return s
}

func (s *stoppable) start(peers []string) {
	s.t.Helper()
	s.App = startP2PAt(s.t, s.dir, peers)
}

func (s *stoppable) stop() {
	s.t.Helper()
	closeApp(s.t, s.App)
	s.App = nil
}

// TestOutageCatchUp: C is stopped while A and B keep talking; when C starts
// again on its data directory it dials A and B, their peer-up events end
// their backoff towards C, their queues deliver what C missed (gaps filled
// with get_missing_events), and C ends with every message, the same current
// state, and a /sync that shows them all.
func TestOutageCatchUp(t *testing.T) {
	const perUser = 10
	a := startStoppable(t, t.TempDir(), nil)
	b := startStoppable(t, t.TempDir(), quicAddrs(a.App))
	c := startStoppable(t, t.TempDir(), append(quicAddrs(a.App), quicAddrs(b.App)...))
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	var users []node.Session
	for i, s := range []*stoppable{a, b, c} {
		u := testnet.RegisterWith(ctx, t, s.node, node.RegisterRequest{Localpart: fmt.Sprintf("user%d", i), Admin: true})
		users = append(users, u)
	}
	roomID := testnet.CreateRoom(ctx, t, a.node, core.CreateRoomRequest{Creator: users[0].UserID, Preset: core.PresetPublicChat})
	for i, s := range []*stoppable{b, c} {
		if status, body := clientJoin(t, s.App, users[i+1].AccessToken, roomID, a.node.ServerName()); status != http.StatusOK {
			t.Fatalf("join on %s: %d %v", s.node.ServerName(), status, body)
		}
	}
	cJoin, err := c.node.Membership(ctx, roomID, users[2].UserID)
	if err != nil {
		t.Fatal(err)
	}
	waitForEvent(ctx, t, a.App, users[0].UserID, roomID, cJoin.EventID)
	waitForEvent(ctx, t, b.App, users[1].UserID, roomID, cJoin.EventID)

	c.stop()

	// A and B talk, each waiting for the other's message before answering,
	// so their queues to C hold interleaved events whose prev events come
	// from the other server.
	var sent []string
	for k := range perUser {
		for i, s := range []*stoppable{a, b} {
			id := testnet.SendText(ctx, t, s.node, users[i].UserID, users[i].DeviceID, roomID, fmt.Sprintf("while C is away %d/%d", i, k))
			other := []*stoppable{b, a}[i]
			waitForEvent(ctx, t, other.App, users[1-i].UserID, roomID, id)
			sent = append(sent, id)
		}
	}

	c.start(append(quicAddrs(a.App), quicAddrs(b.App)...))
	last := sent[len(sent)-1]
	waitForEvent(ctx, t, c.App, users[2].UserID, roomID, last)
	ids, ok := timelineSince(ctx, t, c.App, users[2].UserID, roomID, cJoin.EventID)
	if !ok {
		t.Fatalf("C's timeline lost its own join")
	}
	for _, id := range sent {
		if !slices.Contains(ids, id) {
			t.Fatalf("C lacks %s after catching up (has %d events since its join)", id, len(ids))
		}
	}
	if len(ids) != len(sent)+1 {
		t.Fatalf("C has %d events since its join, want %d", len(ids), len(sent)+1)
	}
	msgs := syncMessageIDs(t, c.App, users[2].AccessToken, roomID)
	for _, id := range sent {
		if !slices.Contains(msgs, id) {
			t.Fatalf("C's /sync lacks %s", id)
		}
	}
	stateA, stateC := currentStateIDs(ctx, t, a.App, roomID), currentStateIDs(ctx, t, c.App, roomID)
	if !slices.Equal(stateA, stateC) {
		t.Fatalf("current state differs after catch-up:\nA: %v\nC: %v", stateA, stateC)
	}

	// And C is a full participant again.
	fromC := testnet.SendText(ctx, t, c.node, users[2].UserID, users[2].DeviceID, roomID, "back")
	waitForEvent(ctx, t, a.App, users[0].UserID, roomID, fromC)
	waitForEvent(ctx, t, b.App, users[1].UserID, roomID, fromC)
}

// currentStateIDs is the sorted event IDs of the room's current state on app.
func currentStateIDs(ctx context.Context, t *testing.T, app *App, roomID string) []string {
	t.Helper()
	evs, err := app.node.CurrentState(ctx, roomID)
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]string, 0, len(evs))
	for _, ev := range evs {
		ids = append(ids, ev.PDU.EventID())
	}
	slices.Sort(ids)
	return ids
}
