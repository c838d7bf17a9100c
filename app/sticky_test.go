package app

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/edgenode/edgenode/internal/testnet"
	"github.com/edgenode/edgenode/node"
	"github.com/edgenode/edgenode/node/core"
)

// sendStickyMsg sends a sticky message on app's node and returns its ID.
func sendStickyMsg(ctx context.Context, t testing.TB, app *App, s node.Session, roomID, body string, durationMS int64) string {
	t.Helper()
	var d *int64
	if durationMS >= 0 {
		d = &durationMS
	}
	id, err := app.node.SendEvent(ctx, core.SendRequest{
		Sender: s.UserID, DeviceID: s.DeviceID, RoomID: roomID, Type: "m.room.message",
		Content: json.RawMessage(fmt.Sprintf(`{"msgtype":"m.text","body":%q}`, body)), StickyDurationMS: d,
	})
	if err != nil {
		t.Fatalf("send %q: %v", body, err)
	}
	return id
}

// waitPast waits (bounded by ctx) until the wall clock is past end: the
// nodes of an app run on the real clock, so an expiry cannot be skipped.
func waitPast(ctx context.Context, t testing.TB, end time.Time) {
	t.Helper()
	select {
	case <-time.After(time.Until(end)):
	case <-ctx.Done():
		t.Fatalf("waiting for %v: %v", end, ctx.Err())
	}
}

// stickyClient is a client's /sync loop (timeline limit 1) that collects
// the sticky events it is given, in the msc4354_sticky section or in the
// timeline, and fails the test on any given twice.
type stickyClient struct {
	t      testing.TB
	app    *App
	token  string
	roomID string
	since  string
	got    map[string]bool
}

func newStickyClient(t testing.TB, app *App, token, roomID string) *stickyClient {
	return &stickyClient{t: t, app: app, token: token, roomID: roomID, got: map[string]bool{}}
}

// syncOnce runs one /sync (long-polling up to a second) and records what
// it brought.
func (c *stickyClient) syncOnce(ctx context.Context) {
	c.t.Helper()
	q := url.Values{"filter": {`{"room":{"timeline":{"limit":1}}}`}, "timeout": {"1000"}}
	if c.since != "" {
		q.Set("since", c.since)
	}
	type event struct {
		EventID        string `json:"event_id"`
		OriginServerTS int64  `json:"origin_server_ts"`
		Sticky         *struct {
			DurationMS int64 `json:"duration_ms"`
		} `json:"msc4354_sticky"`
	}
	var body struct {
		NextBatch string `json:"next_batch"`
		Rooms     struct {
			Join map[string]struct {
				Timeline struct {
					Events []event `json:"events"`
				} `json:"timeline"`
				Sticky struct {
					Events []event `json:"events"`
				} `json:"msc4354_sticky"`
			} `json:"join"`
		} `json:"rooms"`
	}
	testnet.Sync(ctx, c.t, c.app.BaseURL(), c.token, q, &body)
	c.since = body.NextBatch
	jr := body.Rooms.Join[c.roomID]
	for _, e := range jr.Sticky.Events {
		c.add(e.EventID)
	}
	// A timeline event is a sticky one to the client only until its end
	// (MSC4354): an expired one may still be the newest event of a timeline
	// (limit 1) while the node takes in a gap, and is then just a message.
	now := time.Now().UnixMilli()
	for _, e := range jr.Timeline.Events {
		if e.Sticky != nil && e.OriginServerTS+min(e.Sticky.DurationMS, core.MaxStickyDurationMS) > now {
			c.add(e.EventID)
		}
	}
}

func (c *stickyClient) add(id string) {
	c.t.Helper()
	if c.got[id] {
		c.t.Fatalf("sticky event %s delivered twice", id)
	}
	c.got[id] = true
}

// waitFor syncs (bounded by ctx) until the client holds every event of want.
func (c *stickyClient) waitFor(ctx context.Context, want []string) {
	c.t.Helper()
	for {
		missing := 0
		for _, id := range want {
			if !c.got[id] {
				missing++
			}
		}
		if missing == 0 {
			return
		}
		if ctx.Err() != nil {
			c.t.Fatalf("%d of %d sticky events still missing: %v", missing, len(want), ctx.Err())
		}
		c.syncOnce(ctx)
	}
}

// checkExactly fails the test unless the client holds exactly want.
func (c *stickyClient) checkExactly(want []string) {
	c.t.Helper()
	w := map[string]bool{}
	for _, id := range want {
		w[id] = true
	}
	for id := range c.got {
		if !w[id] {
			c.t.Errorf("sticky event %s delivered, not expected (expired?)", id)
		}
	}
	if len(c.got) != len(w) {
		c.t.Errorf("%d sticky events delivered, want %d", len(c.got), len(w))
	}
}

// TestStickyLateJoinerAcrossNodes (MSC4354 acceptance 2): on A, alice sends
// 20 sticky events lasting an hour (each after a message), 5 that expire
// before C joins, and 200 messages in all; when carol of C joins (through A), C's client, syncing with a
// timeline limit of 1, ends with exactly the 20 unexpired sticky events.
// With history visibility "joined" too: A serves C the events before its
// join that C must fetch redacted.
func TestStickyLateJoinerAcrossNodes(t *testing.T) {
	for _, hv := range []string{"shared", "joined"} {
		t.Run(hv, func(t *testing.T) { testStickyLateJoiner(t, hv) })
	}
}

func testStickyLateJoiner(t *testing.T, visibility string) {
	a, b := startPair(t)
	c := startP2P(t, append(quicAddrs(a), quicAddrs(b)...))
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	rp := sharedRoom(ctx, t, a, b)
	carol := testnet.Register(ctx, t, c.node, "carol")

	empty := ""
	if _, err := a.node.SendEvent(ctx, core.SendRequest{Sender: rp.alice.UserID, DeviceID: rp.alice.DeviceID, RoomID: rp.roomID,
		Type: "m.room.history_visibility", StateKey: &empty,
		Content: json.RawMessage(`{"history_visibility":"` + visibility + `"}`)}); err != nil {
		t.Fatal(err)
	}
	// Each sticky event follows a message: its prev event is one C is
	// not sent, so each arrives at C with a gap of its own.
	var live []string
	for i := range 20 {
		sendStickyMsg(ctx, t, a, rp.alice, rp.roomID, fmt.Sprintf("message %d", i), -1)
		live = append(live, sendStickyMsg(ctx, t, a, rp.alice, rp.roomID, fmt.Sprintf("live %d", i), core.MaxStickyDurationMS))
	}
	const short = 1500
	var expired []string
	var shortEnd time.Time // after the last short one's end
	for i := range 5 {
		expired = append(expired, sendStickyMsg(ctx, t, a, rp.alice, rp.roomID, fmt.Sprintf("short %d", i), short))
		shortEnd = time.Now().Add(short * time.Millisecond)
	}
	for i := 20; i < 200; i++ {
		sendStickyMsg(ctx, t, a, rp.alice, rp.roomID, fmt.Sprintf("message %d", i), -1)
	}
	waitPast(ctx, t, shortEnd.Add(100*time.Millisecond))

	client := newStickyClient(t, c, carol.AccessToken, rp.roomID)
	client.syncOnce(ctx)
	if status, body := clientJoin(t, c, carol.AccessToken, rp.roomID, a.node.ServerName()); status != http.StatusOK {
		t.Fatalf("carol joins: %d %v", status, body)
	}
	client.waitFor(ctx, live)
	// One more round: anything else due would be in it.
	client.syncOnce(ctx)
	client.checkExactly(live)
	for _, id := range expired {
		if client.got[id] {
			t.Errorf("expired sticky event %s delivered", id)
		}
	}
	// The old events did not disturb C's view of the room: carol is
	// joined, and C's current state is A's.
	if mi, err := c.node.Membership(ctx, rp.roomID, carol.UserID); err != nil || mi.Membership != "join" {
		t.Errorf("carol's membership on C: %+v, %v", mi, err)
	}
	if got, want := currentStateIDs(ctx, t, c, rp.roomID), currentStateIDs(ctx, t, a, rp.roomID); !slices.Equal(got, want) {
		t.Errorf("C's current state %v, A's %v", got, want)
	}
}

// TestStickyPartitionCatchUp (MSC4354 acceptance 3): B is stopped while
// A's alice sends sticky events, some lasting an hour and some expiring
// while B is away, between messages; when B starts again, bob's client
// (following its sync token from before) gets every unexpired one, and
// none of the expired ones.
func TestStickyPartitionCatchUp(t *testing.T) {
	a := startStoppable(t, t.TempDir(), nil)
	b := startStoppable(t, t.TempDir(), quicAddrs(a.App))
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	rp := sharedRoom(ctx, t, a.App, b.App)
	client := newStickyClient(t, b.App, rp.bob.AccessToken, rp.roomID)
	client.syncOnce(ctx)

	b.stop()
	var live, expired []string
	const short = 1500
	var shortEnd time.Time // after the last short one's end
	for i := range 10 {
		live = append(live, sendStickyMsg(ctx, t, a.App, rp.alice, rp.roomID, fmt.Sprintf("live %d", i), core.MaxStickyDurationMS))
		expired = append(expired, sendStickyMsg(ctx, t, a.App, rp.alice, rp.roomID, fmt.Sprintf("short %d", i), short))
		shortEnd = time.Now().Add(short * time.Millisecond)
		sendStickyMsg(ctx, t, a.App, rp.alice, rp.roomID, fmt.Sprintf("message %d", i), -1)
	}
	waitPast(ctx, t, shortEnd.Add(100*time.Millisecond))
	// The admin view on A: 10 live in the room, 10 pending for B.
	stats := mustCall(t, a.App, http.MethodGet, "/_matrix/client/v1/admin/edgenode/sticky", rp.alice.AccessToken, nil)
	bName := rp.bob.UserID[len("@bob:"):]
	if rooms, _ := stats["rooms"].(map[string]any); rooms[rp.roomID] != float64(10) {
		t.Errorf("admin: rooms %v, want %s: 10", stats["rooms"], rp.roomID)
	}
	if dests, _ := stats["destinations"].(map[string]any); dests[bName] != float64(10) {
		t.Errorf("admin: destinations %v, want %s: 10", stats["destinations"], bName)
	}

	b.start(quicAddrs(a.App))
	client.app = b.App
	client.waitFor(ctx, live)
	client.syncOnce(ctx)
	client.checkExactly(live)
	for _, id := range expired {
		if client.got[id] {
			t.Errorf("sticky event %s, expired while B was away, delivered", id)
		}
	}
}
