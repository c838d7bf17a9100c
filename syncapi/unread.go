package syncapi

import "context"

// threadMain is the main timeline's thread ID in the node's per-thread
// counts (push.ThreadMain, which this package does not import).
const threadMain = "main"

// syncUnread fills unread_notifications for every rooms.join entry of the
// response, whichever section made the entry (timeline, state, ephemeral
// events or account data). The node keeps the counts up to date as events
// and receipts commit, so this is one lookup per room. It runs after the
// other sections so that it sees every entry.
//
// When the filter's room.timeline sets unread_thread_notifications, the
// counts are split as the spec says: unread_notifications counts the main
// timeline only and unread_thread_notifications each thread with something
// unread (one scan of a few keys per room).
func (a *api) syncUnread(ctx context.Context, req *syncRequest, res *syncResponse) error {
	threaded := req.filter.Room.Timeline.UnreadThreadNotifications
	for roomID, jr := range res.Rooms.Join {
		if threaded {
			counts, err := a.n.ThreadUnreadCounts(ctx, req.dev.UserID, roomID)
			if err != nil {
				return err
			}
			main := counts[threadMain]
			jr.Unread = map[string]int{"notification_count": main[0], "highlight_count": main[1]}
			for root, c := range counts {
				if root == threadMain {
					continue
				}
				if jr.UnreadThreads == nil {
					jr.UnreadThreads = make(map[string]map[string]int, len(counts))
				}
				jr.UnreadThreads[root] = map[string]int{"notification_count": c[0], "highlight_count": c[1]}
			}
			continue
		}
		notify, highlight, err := a.n.UnreadCounts(ctx, req.dev.UserID, roomID)
		if err != nil {
			return err
		}
		jr.Unread = map[string]int{"notification_count": notify, "highlight_count": highlight}
	}
	return nil
}
