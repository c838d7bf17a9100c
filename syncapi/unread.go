package syncapi

import "context"

// syncUnread fills unread_notifications for every rooms.join entry of the
// response, whichever section made the entry (timeline, state, ephemeral
// events or account data). The node keeps the counts up to date as events
// and receipts commit, so this is one lookup per room. It runs after the
// other sections so that it sees every entry.
func (a *api) syncUnread(ctx context.Context, req *syncRequest, res *syncResponse) error {
	for roomID, jr := range res.Rooms.Join {
		notify, highlight, err := a.n.UnreadCounts(ctx, req.dev.UserID, roomID)
		if err != nil {
			return err
		}
		jr.Unread = map[string]int{"notification_count": notify, "highlight_count": highlight}
	}
	return nil
}
