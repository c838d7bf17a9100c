package simulation

import (
	"context"
	"net/url"
	"time"
)

// syncFilter asks for up to 100 timeline events per room per response, so
// a busy poll rarely drops events a latency measurement needs.
const syncFilter = `{"room":{"timeline":{"limit":100}}}`

// watch long-polls n's /sync as n's user would, recording when each event
// (timeline or sticky section) first appears. It ends when ctx is done.
func (c *cluster) watch(ctx context.Context, n *simNode, base string, done chan struct{}) {
	defer close(done)
	since := ""
	for ctx.Err() == nil {
		q := url.Values{"timeout": {"5000"}, "filter": {syncFilter}}
		if since != "" {
			q.Set("since", since)
		}
		var resp syncResponse
		cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		err := call(cctx, c.hc, "GET", base+"/_matrix/client/v3/sync?"+q.Encode(), n.token, nil, &resp)
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				c.log.Debug("sync failed", "node", n.idx, "err", err)
				// Bounded pause before retrying a failing node.
				t := time.NewTimer(200 * time.Millisecond)
				select {
				case <-ctx.Done():
				case <-t.C:
				}
				t.Stop()
			}
			continue
		}
		at := c.rec.since()
		for _, room := range resp.Rooms.Join {
			for _, ev := range room.Timeline.Events {
				c.rec.seen(n.idx, ev.EventID, at)
			}
			for _, ev := range room.Sticky.Events {
				c.rec.seen(n.idx, ev.EventID, at)
			}
		}
		since = resp.NextBatch
	}
}
