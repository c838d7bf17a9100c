package push

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/edgenode/edgenode/kv"
	"github.com/edgenode/edgenode/node/core"
)

// The notifications index behind GET /notifications: every event the push
// rules said notifies a local user, written in the room commit's
// transaction where the decision is made (countUnread), newest kept: at most
// MaxNotifications per user, the oldest deleted as new ones come.

// MaxNotifications bounds a user's notifications index. GET
// /notifications reads at most this many keys (plus notifPruneSlack) to
// work out which are read.
const MaxNotifications = 500

// notifPruneSlack lets the index grow this far over MaxNotifications before
// it is trimmed back, so the scan that trims it runs once per so many
// notifications rather than in every commit.
const notifPruneSlack = 64

const (
	tNotif      = "pushnotif"  // user ID, stream position -> notifRecord
	tNotifCount = "pushnotifn" // user ID -> uint64, entries under tNotif
)

func notifKey(userID string, pos uint64) []byte { return kv.Key(tNotif, userID, pos) }
func notifPrefix(userID string) []byte          { return kv.Key(tNotif, userID) }
func notifCountKey(userID string) []byte        { return kv.Key(tNotifCount, userID) }

// notifRecord is one notification.
type notifRecord struct {
	RoomID    string            `json:"r"`
	EventID   string            `json:"e"`
	Highlight bool              `json:"h,omitempty"`
	Actions   []json.RawMessage `json:"a"`
	TS        int64             `json:"ts"`
}

// pendingNotif is a notification decided in a batch, to be written.
type pendingNotif struct {
	pos uint64
	rec notifRecord
}

// writeNotifications adds a batch's notifications for userID and trims the
// index back to MaxNotifications once it is notifPruneSlack over.
func writeNotifications(tx *kv.Txn, userID string, ns []pendingNotif) error {
	count, err := loadCount(tx, notifCountKey(userID))
	if err != nil {
		return err
	}
	for _, p := range ns {
		if err := tx.SetJSON(notifKey(userID, p.pos), p.rec); err != nil {
			return err
		}
	}
	count += uint64(len(ns))
	if count > MaxNotifications+notifPruneSlack {
		deleted, err := tx.DeleteFirst(kv.Scan{Prefix: notifPrefix(userID)}, int(count-MaxNotifications))
		if err != nil {
			return err
		}
		count -= uint64(deleted)
	}
	return tx.Set(notifCountKey(userID), binary.BigEndian.AppendUint64(nil, count))
}

func loadCount(tx *kv.Txn, key []byte) (uint64, error) {
	b, err := tx.Get(key)
	if errors.Is(err, kv.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if len(b) != 8 {
		return 0, fmt.Errorf("count at %x: %d bytes", key, len(b))
	}
	return binary.BigEndian.Uint64(b), nil
}

// Notification is one entry of GET /notifications.
type Notification struct {
	RoomID    string
	EventID   string
	Actions   []json.RawMessage
	Highlight bool
	// Read: the user has read the event (a read receipt or their own later
	// event cleared the room's count past it).
	Read bool
	TS   time.Time
	// Token is the entry's pagination token.
	Token string
}

// Notifications returns userID's notifications, newest first: at most limit
// of them, older than the token from ("" for the newest), only highlights
// when onlyHighlight. next is the token for the following page ("" when
// there is none).
//
// Whether an entry is read is worked out from the room's unread count: the
// newest Notify notifications of a room are the unread ones, because both
// come from the same decisions and are cleared by the same receipts.
func (n *Push) Notifications(ctx context.Context, userID, from string, limit int, onlyHighlight bool) (out []Notification, next string, err error) {
	if err := ctx.Err(); err != nil {
		return nil, "", err
	}
	var before uint64 // 0: from the newest
	if from != "" {
		if before, err = strconv.ParseUint(from, 10, 64); err != nil || before == 0 {
			return nil, "", fmt.Errorf("%w: bad from token", core.ErrInvalidParam)
		}
	}
	err = n.DB.View(func(tx *kv.Txn) error {
		seen := map[string]int{}   // room -> notifications of it seen so far, newest first
		unread := map[string]int{} // room -> its unread count
		return tx.Each(kv.Scan{Prefix: notifPrefix(userID), Reverse: true}, func(k, v []byte) (bool, error) {
			pos, err := kv.LastUint(k)
			if err != nil {
				return false, err
			}
			var rec notifRecord
			if err := core.DecodeJSON(v, &rec); err != nil {
				return false, err
			}
			u, ok := unread[rec.RoomID]
			if !ok {
				if u, _, err = LoadUnread(tx, userID, rec.RoomID); err != nil {
					return false, err
				}
				unread[rec.RoomID] = u
			}
			rank := seen[rec.RoomID]
			seen[rec.RoomID] = rank + 1
			if before != 0 && pos >= before || onlyHighlight && !rec.Highlight {
				return true, nil
			}
			if len(out) == limit {
				next = strconv.FormatUint(out[len(out)-1].tokenPos(), 10)
				return false, nil
			}
			out = append(out, Notification{RoomID: rec.RoomID, EventID: rec.EventID, Actions: rec.Actions,
				Highlight: rec.Highlight, Read: rank >= u, TS: time.UnixMilli(rec.TS), Token: strconv.FormatUint(pos, 10)})
			return true, nil
		})
	})
	return out, next, err
}

func (x Notification) tokenPos() uint64 {
	p, _ := strconv.ParseUint(x.Token, 10, 64) // written by Notifications
	return p
}
