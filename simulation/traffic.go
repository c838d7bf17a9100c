package simulation

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// maxInFlight bounds concurrent sends: a slow node makes the generator
// skip ticks (counted) rather than pile up goroutines.
const maxInFlight = 32

// trafficStats count sends.
type trafficStats struct {
	errors, skipped atomic.Int64
}

// traffic sends messages and sticky events at the scenario's rates until
// the traffic phase ends, each from a random running, joined node into
// one of its rooms.
func (c *cluster) traffic(ctx context.Context, rng *rand.Rand, st *trafficStats) {
	total := c.s.MessagesPerSecond + c.s.StickyPerSecond
	if total <= 0 {
		return
	}
	tick := time.NewTicker(time.Duration(float64(time.Second) / total))
	defer tick.Stop()
	end := time.NewTimer(c.s.Duration - c.rec.since())
	defer end.Stop()
	sem := make(chan struct{}, maxInFlight)
	var wg sync.WaitGroup
	defer wg.Wait()
	seq := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-end.C:
			return
		case <-tick.C:
		}
		sticky := rng.Float64()*total < c.s.StickyPerSecond
		n, room, ok := c.pickSender(rng)
		if !ok {
			st.skipped.Add(1)
			continue
		}
		select {
		case sem <- struct{}{}:
		default:
			st.skipped.Add(1)
			continue
		}
		seq++
		wg.Add(1)
		go func(seq int) {
			defer wg.Done()
			defer func() { <-sem }()
			if err := c.send(ctx, n, room, seq, sticky); err != nil {
				st.errors.Add(1)
				c.log.Debug("send failed", "node", n.idx, "err", err)
			}
		}(seq)
	}
}

// pickSender picks a running node with a joined room.
func (c *cluster) pickSender(rng *rand.Rand) (*simNode, int, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var cands []*simNode
	for _, n := range c.nodes {
		if n.app != nil && len(n.rooms) > 0 {
			cands = append(cands, n)
		}
	}
	if len(cands) == 0 {
		return nil, 0, false
	}
	n := cands[rng.IntN(len(cands))]
	return n, n.rooms[rng.IntN(len(n.rooms))], true
}

// send sends one event through n's client API and records it.
func (c *cluster) send(ctx context.Context, n *simNode, room, seq int, sticky bool) error {
	c.mu.Lock()
	a := n.app
	c.mu.Unlock()
	if a == nil {
		return fmt.Errorf("node %d stopped", n.idx)
	}
	txn := fmt.Sprintf("sim%d", seq)
	u := a.BaseURL() + "/_matrix/client/v3/rooms/" + url.PathEscape(c.roomIDs[room]) + "/send/m.room.message/" + txn
	if sticky {
		u += "?org.matrix.msc4354.sticky_duration_ms=" + fmt.Sprint(c.s.StickyDuration.Milliseconds())
	}
	body := map[string]any{"msgtype": "m.text", "body": fmt.Sprintf("message %d from node %d", seq, n.idx)}
	at := c.rec.since()
	sentAt := time.Now()
	var out struct {
		EventID string `json:"event_id"`
	}
	cctx, cancel := context.WithTimeout(ctx, clientTimeout)
	defer cancel()
	if err := call(cctx, c.hc, "PUT", u, n.token, body, &out); err != nil {
		return err
	}
	e := &sentEvent{ID: out.EventID, Room: room, Node: n.idx, At: at, Sticky: sticky}
	if sticky {
		e.Expires = sentAt.Add(c.s.StickyDuration)
	}
	c.rec.addSent(e)
	return nil
}
