package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/edgenode/edgenode/kv"
	"github.com/edgenode/edgenode/node/core"
)

// Presence states.
const (
	PresenceOnline      = "online"
	PresenceOffline     = "offline"
	PresenceUnavailable = "unavailable"
)

const (
	// maxStatusMsgBytes caps a status message: it is copied to everyone who
	// shares a room with its user.
	maxStatusMsgBytes = 4096
	// presenceActiveRefresh is how stale a user's last-active time may get
	// before a SetPresence that changes nothing else writes a new one.
	// /sync sets presence on every request; without this, each would be a
	// disk write (and with a new position, a wake-up of everyone sharing a
	// room: the battery-draining chatter earlier P2P nodes were blamed for).
	presenceActiveRefresh = time.Minute
	// currentlyActiveWindow is how recently an online user must have been
	// active to be reported as currently active.
	currentlyActiveWindow = 5 * time.Minute
)

// presenceRecord is a user's latest presence.
type presenceRecord struct {
	Presence     string  `json:"p"`
	StatusMsg    *string `json:"s,omitempty"`
	LastActiveTS int64   `json:"la,omitempty"`
	// Manual is set when the user set this presence themselves (PUT
	// /presence) rather than by syncing; a manual unavailable does not decay
	// (presence_decay.go).
	Manual bool `json:"m,omitempty"`
	// FedTS is, for a remote user, when their server last told of their
	// presence; for a local user, when it was last sent to other servers
	// (Unix ms). Decay and federation pings count from it.
	FedTS int64 `json:"fu,omitempty"`
	// Pos is the presence stream position of the last visible change; its
	// stream index entry is deleted when a newer change supersedes it.
	Pos uint64 `json:"pos"`
}

// PresenceState is a user's presence as clients see it (the content of an
// m.presence event, and the reply of GET /presence/{userId}/status).
type PresenceState struct {
	Presence  string  `json:"presence"`
	StatusMsg *string `json:"status_msg,omitempty"`
	// LastActiveAgo is milliseconds since the user was last active; 0 when
	// unknown.
	LastActiveAgo   int64 `json:"last_active_ago,omitempty"`
	CurrentlyActive bool  `json:"currently_active,omitempty"`
}

// PresenceEvent is one user's presence; it encodes as an m.presence event.
type PresenceEvent struct {
	UserID string
	PresenceState
}

// MarshalJSON encodes the m.presence event /sync sends.
func (e PresenceEvent) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Type    string        `json:"type"`
		Sender  string        `json:"sender"`
		Content PresenceState `json:"content"`
	}{"m.presence", e.UserID, e.PresenceState})
}

// PresencePosition is the latest presence stream position.
func (n *Node) PresencePosition() uint64 { return n.presence.Current() }

// SetPresence sets a local user's presence (online, offline or unavailable)
// and status message (nil keeps the current one; "" clears it), as the user
// asked through the presence API: an unavailable or offline so set stays
// until changed, where one set by syncing decays (presence_decay.go).
// Going or staying online marks the user active now. Only a change others
// can see (presence or status message) takes a stream position and wakes the
// local users sharing a room with the user; refreshing the last-active time
// writes at most once a minute and wakes nobody, so it is cheap to call on
// every /sync.
func (n *Node) SetPresence(ctx context.Context, userID, presence string, statusMsg *string) error {
	return n.setPresence(ctx, userID, presence, statusMsg, true)
}

// setPresence is SetPresence; manual says whether the user set it
// themselves rather than by syncing (BeginSync).
func (n *Node) setPresence(ctx context.Context, userID, presence string, statusMsg *string, manual bool) error {
	switch presence {
	case PresenceOnline, PresenceOffline, PresenceUnavailable:
	default:
		return fmt.Errorf("%w: presence %q (want online, offline or unavailable)", core.ErrInvalidParam, presence)
	}
	if statusMsg != nil && len(*statusMsg) > maxStatusMsgBytes {
		return fmt.Errorf("%w: status_msg over %d bytes", core.ErrInvalidParam, maxStatusMsgBytes)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	var rec presenceRecord
	_, err := n.presence.Commit(1, func(tx *kv.Txn, pos uint64) error {
		key := presenceKey(userID)
		var old presenceRecord
		if err := tx.GetJSON(key, &old); err != nil && !errors.Is(err, kv.ErrNotFound) {
			return err
		}
		rec = old
		rec.Presence = presence
		if statusMsg != nil {
			rec.StatusMsg = statusMsg
			if *statusMsg == "" {
				rec.StatusMsg = nil
			}
		}
		now := n.Now().UnixMilli()
		if presence == PresenceOnline {
			rec.LastActiveTS = now
		}
		visible := old.Pos == 0 || rec.Presence != old.Presence || !equalStringPtr(rec.StatusMsg, old.StatusMsg)
		if !visible {
			rec = old
			// A sync leaves a presence the user set themselves marked so;
			// the user saying it again marks one set by syncing.
			if (presence == PresenceOnline && now-old.LastActiveTS >= presenceActiveRefresh.Milliseconds()) || (manual && !old.Manual) {
				return errActiveOnly
			}
			return errUnchanged
		}
		if old.Pos != 0 {
			if err := tx.Delete(presenceStreamKey(old.Pos)); err != nil {
				return err
			}
		}
		rec.Pos, rec.Manual = pos, manual
		if n.IsLocalUser(userID) {
			rec.FedTS = now // federated below
		}
		if err := tx.Set(presenceStreamKey(pos), []byte(userID)); err != nil {
			return err
		}
		return tx.SetJSON(key, rec)
	})
	if errors.Is(err, errActiveOnly) {
		rec, err = n.touchPresence(userID, presence, manual)
		if err == nil {
			n.schedulePresence(userID, rec)
		}
		return err
	}
	if errors.Is(err, errUnchanged) {
		n.schedulePresence(userID, rec)
		return nil
	}
	if err != nil {
		return err
	}
	n.schedulePresence(userID, rec)
	return n.announcePresence(ctx, userID)
}

// announcePresence tells userID's presence, just changed, to the servers
// sharing a room with them and wakes their local room mates' syncs.
func (n *Node) announcePresence(ctx context.Context, userID string) error {
	n.federatePresence(ctx, userID)
	wake, err := n.roomMatesOf(userID)
	if err != nil {
		return err
	}
	n.Notifier.Wake(wake...)
	return nil
}

// errActiveOnly aborts a presence commit whose only change is a fresher
// last-active time or the manual mark, which touchPresence then writes
// without a position.
var errActiveOnly = errors.New("only last-active changed")

// touchPresence records that a user whose presence is still presence is
// active now (when online) and, if manual, that they set it themselves. It
// commits zero positions: neither is worth a wake-up, and going through the
// stream's commit keeps it ordered with SetPresence. It returns the record
// as stored.
func (n *Node) touchPresence(userID, presence string, manual bool) (presenceRecord, error) {
	var rec presenceRecord
	_, err := n.presence.Commit(0, func(tx *kv.Txn, _ uint64) error {
		if err := tx.GetJSON(presenceKey(userID), &rec); err != nil {
			return err
		}
		if rec.Presence != presence {
			return nil // changed in between; that write stands
		}
		if presence == PresenceOnline {
			rec.LastActiveTS = n.Now().UnixMilli()
		}
		rec.Manual = rec.Manual || manual
		return tx.SetJSON(presenceKey(userID), rec)
	})
	return rec, err
}

func equalStringPtr(a, b *string) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// Presence returns a user's presence. A local user who never set one is
// offline; a user the node knows nothing of is ErrNotFound. Whether the
// caller may see it is the caller's check (SharesRoom).
func (n *Node) Presence(ctx context.Context, userID string) (PresenceState, error) {
	var ps PresenceState
	err := n.DB.View(func(tx *kv.Txn) error {
		var rec presenceRecord
		err := tx.GetJSON(presenceKey(userID), &rec)
		if err == nil {
			ps = n.presenceState(rec)
			return nil
		}
		if !errors.Is(err, kv.ErrNotFound) {
			return err
		}
		if lp, lerr := n.LocalpartOf(userID); lerr == nil && n.IsLocalUser(userID) {
			if ok, err := tx.Has(core.AccountKey(lp)); err != nil || ok {
				ps = PresenceState{Presence: PresenceOffline}
				return err
			}
		}
		return fmt.Errorf("presence of %s: %w", userID, core.ErrNotFound)
	})
	return ps, err
}

// presenceState turns a stored record into what clients see, now.
func (n *Node) presenceState(rec presenceRecord) PresenceState {
	ps := PresenceState{Presence: rec.Presence, StatusMsg: rec.StatusMsg}
	if rec.LastActiveTS != 0 {
		ps.LastActiveAgo = max(n.Now().UnixMilli()-rec.LastActiveTS, 0)
		ps.CurrentlyActive = rec.Presence == PresenceOnline && ps.LastActiveAgo < currentlyActiveWindow.Milliseconds()
	}
	return ps
}

// PresenceSince returns the presence of every user whose presence changed
// after from, up to and including to (from 0: every user's), that forUser may
// see: forUser and the users sharing a joined room with them. Each user
// appears once, with their latest presence; one changed again after to is
// left out, as the next call, from to, reports it.
func (n *Node) PresenceSince(ctx context.Context, forUser string, from, to uint64) ([]PresenceEvent, error) {
	var out []PresenceEvent
	if to <= from {
		return out, nil
	}
	err := n.DB.View(func(tx *kv.Txn) error {
		myRooms := map[string]bool{}
		err := core.EachJoinedRoom(tx, forUser, func(roomID string) (bool, error) { myRooms[roomID] = true; return true, nil })
		if err != nil {
			return err
		}
		scan := kv.Scan{Prefix: kv.Key(tPresenceStream), From: presenceStreamKey(from + 1)}
		return tx.Each(scan, func(k, v []byte) (bool, error) {
			pos, err := kv.LastUint(k)
			if err != nil {
				return false, err
			}
			if pos > to {
				return false, nil
			}
			userID := string(v)
			if userID != forUser {
				shared := false
				err := core.EachJoinedRoom(tx, userID, func(roomID string) (bool, error) { shared = myRooms[roomID]; return !shared, nil })
				if err != nil || !shared {
					return err == nil, err
				}
			}
			var rec presenceRecord
			if err := tx.GetJSON(presenceKey(userID), &rec); err != nil {
				return false, fmt.Errorf("presence index %d: %w", pos, err)
			}
			out = append(out, PresenceEvent{UserID: userID, PresenceState: n.presenceState(rec)})
			return true, nil
		})
	})
	return out, err
}

// SharesRoom reports whether two users are both joined to at least one
// common room (a user always shares with themselves).
func (n *Node) SharesRoom(ctx context.Context, a, b string) (bool, error) {
	if a == b {
		return true, nil
	}
	shared := false
	err := n.DB.View(func(tx *kv.Txn) error {
		aRooms := map[string]bool{}
		if err := core.EachJoinedRoom(tx, a, func(roomID string) (bool, error) { aRooms[roomID] = true; return true, nil }); err != nil {
			return err
		}
		return core.EachJoinedRoom(tx, b, func(roomID string) (bool, error) { shared = aRooms[roomID]; return !shared, nil })
	})
	return shared, err
}

// roomMatesOf lists userID and the local users joined to a room userID is
// joined to: whom a change of userID's presence concerns.
func (n *Node) roomMatesOf(userID string) ([]string, error) {
	seen := map[string]bool{userID: true}
	out := []string{userID}
	err := n.DB.View(func(tx *kv.Txn) error {
		var rooms []string
		if err := core.EachJoinedRoom(tx, userID, func(roomID string) (bool, error) { rooms = append(rooms, roomID); return true, nil }); err != nil {
			return err
		}
		for _, roomID := range rooms {
			err := localJoinedIn(tx, roomID, func(u string) {
				if !seen[u] {
					seen[u] = true
					out = append(out, u)
				}
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	return out, err
}
