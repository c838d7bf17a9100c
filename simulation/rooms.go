package simulation

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"time"
)

// createRooms has each room's creator create it (public, so others can
// join by ID).
func (c *cluster) createRooms(ctx context.Context) error {
	for r := range c.s.Rooms {
		n := c.nodes[c.s.creator(r)]
		var out struct {
			RoomID string `json:"room_id"`
		}
		body := map[string]any{"preset": "public_chat", "name": fmt.Sprintf("sim room %d", r)}
		if err := call(ctx, c.hc, "POST", n.app.BaseURL()+"/_matrix/client/v3/createRoom", n.token, body, &out); err != nil {
			return fmt.Errorf("create room %d: %w", r, err)
		}
		c.roomIDs = append(c.roomIDs, out.RoomID)
		c.markJoined(n, r)
	}
	return nil
}

func (c *cluster) markJoined(n *simNode, r int) {
	c.mu.Lock()
	n.rooms = append(n.rooms, r)
	c.mu.Unlock()
	c.rec.joined(n.idx, r, c.rec.since())
}

// join makes node i join its rooms through each room's creator. With wait
// (late joiners) it then waits, bounded, until every running member has the
// join, so that events sent afterwards are owed to it; setup's concurrent
// joins are settled by settleRooms instead.
func (c *cluster) join(ctx context.Context, i int, wait bool) error {
	n := c.nodes[i]
	for _, r := range c.s.roomsOf(i) {
		if slices.Contains(n.rooms, r) {
			continue
		}
		creator := c.nodes[c.s.creator(r)]
		u := n.app.BaseURL() + "/_matrix/client/v3/join/" + url.PathEscape(c.roomIDs[r]) + "?server_name=" + url.QueryEscape(creator.server)
		cctx, cancel := context.WithTimeout(ctx, clientTimeout)
		err := call(cctx, c.hc, "POST", u, n.token, map[string]any{}, nil)
		cancel()
		if err != nil {
			return fmt.Errorf("node %d joins room %d: %w", i, r, err)
		}
		if wait {
			if err := c.awaitJoin(ctx, n, r); err != nil {
				return err
			}
		}
		c.markJoined(n, r)
	}
	return nil
}

// awaitJoin polls until every running member of room r has n's join.
func (c *cluster) awaitJoin(ctx context.Context, n *simNode, r int) error {
	mi, err := inside(n.app).Membership(ctx, c.roomIDs[r], n.userID)
	if err != nil {
		return fmt.Errorf("node %d membership: %w", n.idx, err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		missing := 0
		for _, m := range c.membersOf(r) {
			a := c.running()[m]
			if a == nil {
				continue
			}
			evs, err := inside(a).Events(ctx, []string{mi.EventID})
			if err != nil {
				return fmt.Errorf("node %d events: %w", m, err)
			}
			missing += 1 - len(evs)
		}
		if missing == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			c.log.Warn("join not everywhere after 30s; counting from now", "node", n.idx, "room", r, "missing", missing)
			return nil
		}
		if err := pause(ctx, 100*time.Millisecond); err != nil {
			return err
		}
	}
}

// membersOf lists the nodes joined to room r.
func (c *cluster) membersOf(r int) []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []int
	for _, n := range c.nodes {
		if slices.Contains(n.rooms, r) {
			out = append(out, n.idx)
		}
	}
	return out
}

// pause waits d or until ctx is done: the bounded step of polls.
func pause(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// settleRooms makes each room's members agree after setup's concurrent
// joins. A join races with others: the server it went through forwards it
// only to servers already joined, so a member may learn of another's join
// only when a later event refers to it. The creator sends one message per
// room (not counted as traffic), and the members must then agree, bounded
// by a minute.
func (c *cluster) settleRooms(ctx context.Context) error {
	for r := range c.roomIDs {
		n := c.nodes[c.s.creator(r)]
		u := n.app.BaseURL() + "/_matrix/client/v3/rooms/" + url.PathEscape(c.roomIDs[r]) + "/send/m.room.message/settle"
		if err := call(ctx, c.hc, "PUT", u, n.token, map[string]any{"msgtype": "m.notice", "body": "setup done"}, nil); err != nil {
			return fmt.Errorf("settle room %d: %w", r, err)
		}
	}
	deadline := time.Now().Add(time.Minute)
	for {
		pending := 0
		running := c.running()
		for r := range c.roomIDs {
			same, _, err := c.agree(ctx, r, running)
			if err != nil {
				return err
			}
			if !same {
				pending++
			}
		}
		if pending == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d rooms' members still disagree a minute after setup", pending)
		}
		if err := pause(ctx, 200*time.Millisecond); err != nil {
			return err
		}
	}
}
