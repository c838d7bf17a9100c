package node

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"time"

	"github.com/edgenode/edgenode/kv"
)

// Presence decays, as Synapse's handlers/presence.py does: a client that
// stops syncing, a user who stops doing anything and a server that stops
// telling of its users must not leave anyone "online" for ever.
const (
	// syncOnlineTimeout is how long after their last sync ended (with none
	// in flight) a local user goes offline: time for a client to start its
	// next long-poll. Synapse's SYNC_ONLINE_TIMEOUT.
	syncOnlineTimeout = 30 * time.Second
	// idleTimeout is how long after they were last active an online local
	// user goes unavailable. Synapse's IDLE_TIMER.
	idleTimeout = 5 * time.Minute
	// federationTimeout is how long a remote user's presence stands without
	// their server saying it again; then they go offline. Synapse's
	// FEDERATION_TIMEOUT.
	federationTimeout = 30 * time.Minute
	// federationPing is how often a local user's unchanged presence (other
	// than offline) is sent again, so other servers do not time it out.
	// Synapse's FEDERATION_PING_INTERVAL.
	federationPing = 25 * time.Minute
)

// presenceWatch is the in-memory side of presence decay: whose syncs are in
// flight, when their last one ended, and when each user's presence is next
// due to change. It holds an entry only for a user with a sync in flight or
// a decay pending, and one timer serves them all: it fires at the earliest
// due time, so an idle node with nobody online never wakes for presence.
type presenceWatch struct {
	mu    sync.Mutex
	users map[string]*userWatch
	timer *time.Timer
	// due is when timer fires (Unix ms); zero while it is not armed.
	due    int64
	closed bool
	// sweeps counts sweeps under way, so Close waits for them before closing
	// the database they write.
	sweeps sync.WaitGroup
}

// userWatch is one user's entry in presenceWatch.
type userWatch struct {
	syncs int // syncs in flight
	// syncEnd is when the user's last sync ended (Unix ms); 0 when unknown
	// (none since the node started).
	syncEnd int64
	// next is when the user's presence is next due to change or to be sent
	// again (Unix ms); 0 when nothing is due.
	next int64
}

// BeginSync tells the node that a sync request of userID starts, with the
// request's set_presence ("" means online). Until the returned end is
// called, the user is not taken offline for want of syncing; end must be
// called when the request is answered or abandoned (calls after the first
// do nothing, so a handler may call it before writing its response and
// defer it as well). With
// set_presence offline the request neither sets nor keeps up presence.
// Presence due to decay by now (a timer may be late after the device slept)
// is decayed first, so the response reports it.
func (n *Node) BeginSync(ctx context.Context, userID, setPresence string) (end func(), err error) {
	n.catchUpPresence()
	if setPresence == PresenceOffline {
		return func() {}, nil
	}
	if setPresence == "" {
		setPresence = PresenceOnline
	}
	w := n.presenceWatch
	w.mu.Lock()
	u := w.users[userID]
	if u == nil {
		u = &userWatch{}
		w.users[userID] = u
	}
	u.syncs++
	w.mu.Unlock()
	var once sync.Once
	end = func() { once.Do(func() { n.endSync(userID) }) }
	if err := n.setPresence(ctx, userID, setPresence, nil, false); err != nil {
		end()
		return nil, err
	}
	return end, nil
}

// endSync records the end of one of userID's syncs; after the last one the
// user's offline timeout starts.
func (n *Node) endSync(userID string) {
	w := n.presenceWatch
	w.mu.Lock()
	if u := w.users[userID]; u != nil {
		u.syncs--
		u.syncEnd = n.Now().UnixMilli()
	}
	closed := w.closed
	w.mu.Unlock()
	if closed {
		return // a sync answered while the node closes: nothing to schedule
	}
	var rec presenceRecord
	err := n.DB.View(func(tx *kv.Txn) error { return tx.GetJSON(presenceKey(userID), &rec) })
	if err != nil {
		if !errors.Is(err, kv.ErrNotFound) {
			n.Logger().Warn("presence after sync", "user", userID, "err", err)
		}
		rec = presenceRecord{Presence: PresenceOffline}
	}
	n.schedulePresence(userID, rec)
}

// syncState reports whether userID has a sync in flight and when their
// last one ended.
func (n *Node) syncState(userID string) (syncing bool, syncEnd int64) {
	w := n.presenceWatch
	w.mu.Lock()
	defer w.mu.Unlock()
	if u := w.users[userID]; u != nil {
		return u.syncs > 0, u.syncEnd
	}
	return false, 0
}

// decayPresence is the policy: what presence rec becomes at now, and when
// it is next due to change or (for a local user) to be sent again to other
// servers; 0 when never. syncing and syncEnd are the user's syncs (local
// users only).
//
// A local user online and inactive for idleTimeout goes unavailable; one
// with no sync in flight for syncOnlineTimeout after the later of their last
// sync's end and their last activity goes offline. Presence the user set
// themselves as unavailable (or offline) stays as set. When the end of the
// last sync is unknown (the node restarted since), the last-active time,
// written at least every presenceActiveRefresh while the user syncs, stands
// in for it: a node restarted after hours finds its users offline at once,
// one restarted quickly gives their clients time to come back.
//
// A remote user whose server has not repeated their presence for
// federationTimeout goes offline.
func decayPresence(rec presenceRecord, local, syncing bool, syncEnd, now int64) (presence string, next int64) {
	p := rec.Presence
	if p == PresenceOffline {
		return p, 0
	}
	due := func(at int64) {
		if next == 0 || at < next {
			next = at
		}
	}
	if !local {
		at := rec.FedTS + federationTimeout.Milliseconds()
		if now >= at {
			return PresenceOffline, 0
		}
		return p, at
	}
	if !rec.Manual || p == PresenceOnline {
		if p == PresenceOnline {
			at := rec.LastActiveTS + idleTimeout.Milliseconds()
			if now >= at {
				p = PresenceUnavailable
			} else {
				due(at)
			}
		}
		if !syncing {
			end := syncEnd
			if end == 0 {
				end = rec.LastActiveTS + presenceActiveRefresh.Milliseconds()
			}
			at := max(end, rec.LastActiveTS) + syncOnlineTimeout.Milliseconds()
			if now >= at {
				return PresenceOffline, 0
			}
			due(at)
		}
	}
	due(rec.FedTS + federationPing.Milliseconds())
	return p, next
}

// schedulePresence updates userID's due time from their stored record rec
// and arms the timer for it.
func (n *Node) schedulePresence(userID string, rec presenceRecord) {
	w := n.presenceWatch
	w.mu.Lock()
	defer w.mu.Unlock()
	u := w.users[userID]
	syncing, syncEnd := false, int64(0)
	if u != nil {
		syncing, syncEnd = u.syncs > 0, u.syncEnd
	}
	now := n.Now().UnixMilli()
	p, next := decayPresence(rec, n.IsLocalUser(userID), syncing, syncEnd, now)
	if p != rec.Presence {
		next = now // overdue (the timer was late, as when a device sleeps): now
	}
	if next == 0 {
		if u != nil && u.syncs == 0 {
			delete(w.users, userID)
		} else if u != nil {
			u.next = 0
		}
		return
	}
	if u == nil {
		u = &userWatch{}
		w.users[userID] = u
	}
	u.next = next
	n.armPresence(next)
}

// armPresence makes the presence timer fire no later than at (Unix ms).
// Callers hold presenceWatch.mu.
func (n *Node) armPresence(at int64) {
	w := n.presenceWatch
	if w.closed || (w.due != 0 && at >= w.due) {
		return
	}
	w.due = at
	d := max(time.Duration(at-n.Now().UnixMilli())*time.Millisecond, 0)
	if w.timer == nil {
		w.timer = time.AfterFunc(d, n.sweepPresence)
		return
	}
	w.timer.Reset(d)
}

// catchUpPresence sweeps now if the timer is overdue: on a phone the timer
// stops while the device sleeps, and the wall clock does not.
func (n *Node) catchUpPresence() {
	w := n.presenceWatch
	w.mu.Lock()
	overdue := w.due != 0 && w.due <= n.Now().UnixMilli()
	w.mu.Unlock()
	if overdue {
		n.sweepPresence()
	}
}

// sweepPresence runs when the presence timer fires: it decays every user
// whose presence is due, and re-arms the timer for the next due time.
func (n *Node) sweepPresence() {
	w := n.presenceWatch
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return
	}
	w.sweeps.Add(1)
	defer w.sweeps.Done()
	now := n.Now().UnixMilli()
	var due []string
	w.due = 0
	for userID, u := range w.users {
		if u.next != 0 && u.next <= now {
			due = append(due, userID)
			u.next = 0
		} else if u.next != 0 {
			n.armPresence(u.next)
		}
	}
	w.mu.Unlock()
	for _, userID := range due {
		if err := n.decayUser(n.Life, userID); err != nil {
			n.Logger().Warn("presence decay", "user", userID, "err", err)
			n.retryPresence(userID)
		}
	}
}

// presenceRetry is how long a decay that failed (a database error) waits
// before it is tried again.
const presenceRetry = time.Minute

// retryPresence schedules userID's decay again after presenceRetry.
func (n *Node) retryPresence(userID string) {
	w := n.presenceWatch
	w.mu.Lock()
	defer w.mu.Unlock()
	u := w.users[userID]
	if u == nil {
		u = &userWatch{}
		w.users[userID] = u
	}
	u.next = n.Now().Add(presenceRetry).UnixMilli()
	n.armPresence(u.next)
}

// errFedPingOnly aborts a decay commit that changes nothing anyone sees but
// is due to send a local user's presence to other servers again.
var errFedPingOnly = errors.New("federation ping only")

// decayUser applies the decay policy to userID's stored presence: a change
// takes a presence position, wakes the local users sharing a room with
// them and, for a local user, is sent to other servers; a local user's
// unchanged presence is sent again when it is due.
func (n *Node) decayUser(ctx context.Context, userID string) error {
	local := n.IsLocalUser(userID)
	var rec presenceRecord
	changed := false
	_, err := n.presence.Commit(1, func(tx *kv.Txn, pos uint64) error {
		key := presenceKey(userID)
		if err := tx.GetJSON(key, &rec); err != nil {
			return err
		}
		syncing, syncEnd := n.syncState(userID)
		now := n.Now().UnixMilli()
		p, _ := decayPresence(rec, local, syncing, syncEnd, now)
		if p == rec.Presence {
			if local && p != PresenceOffline && now >= rec.FedTS+federationPing.Milliseconds() {
				return errFedPingOnly
			}
			return errUnchanged
		}
		if err := tx.Delete(presenceStreamKey(rec.Pos)); err != nil {
			return err
		}
		rec.Presence, rec.Manual, rec.Pos, changed = p, false, pos, true
		if local {
			rec.FedTS = now
		}
		if err := tx.Set(presenceStreamKey(pos), []byte(userID)); err != nil {
			return err
		}
		return tx.SetJSON(key, rec)
	})
	switch {
	case errors.Is(err, errFedPingOnly):
		_, err = n.presence.Commit(0, func(tx *kv.Txn, _ uint64) error {
			if err := tx.GetJSON(presenceKey(userID), &rec); err != nil {
				return err
			}
			rec.FedTS = n.Now().UnixMilli()
			return tx.SetJSON(presenceKey(userID), rec)
		})
		if err != nil {
			return err
		}
		n.federatePresence(ctx, userID)
	case errors.Is(err, errUnchanged):
	case errors.Is(err, kv.ErrNotFound):
		rec = presenceRecord{Presence: PresenceOffline} // nothing to decay: forget the user
	case err != nil:
		return err
	}
	n.schedulePresence(userID, rec)
	if !changed {
		return nil
	}
	return n.announcePresence(ctx, userID)
}

// openPresenceDecay starts presence decay: it decays at once the presence
// that fell due while the node was not running (so a node restarted after
// hours shows nobody online who is not), and schedules the rest.
func (n *Node) openPresenceDecay(ctx context.Context) error {
	n.presenceWatch = &presenceWatch{users: map[string]*userWatch{}}
	now := n.Now().UnixMilli()
	type entry struct {
		userID string
		rec    presenceRecord
	}
	var pending []entry
	err := n.DB.View(func(tx *kv.Txn) error {
		return tx.Each(kv.Scan{Prefix: kv.Key(tPresence)}, func(k, v []byte) (bool, error) {
			userID, err := kv.LastString(k)
			if err != nil {
				return false, err
			}
			var rec presenceRecord
			if err := json.Unmarshal(v, &rec); err != nil {
				// Presence is not worth refusing to open over.
				n.Logger().Warn("presence record unreadable", "user", userID, "err", err)
				return true, nil
			}
			if rec.Presence != PresenceOffline {
				pending = append(pending, entry{userID, rec})
			}
			return true, nil
		})
	})
	if err != nil {
		return err
	}
	var changes []presenceChange
	for _, e := range pending {
		if p, _ := decayPresence(e.rec, n.IsLocalUser(e.userID), false, 0, now); p != e.rec.Presence {
			changes = append(changes, presenceChange{e.userID, p})
			continue
		}
		n.schedulePresence(e.userID, e.rec)
	}
	for len(changes) > 0 {
		batch := changes[:min(len(changes), presenceOpenBatch)]
		changes = changes[len(batch):]
		if err := n.decayAtOpen(ctx, batch, now); err != nil {
			return err
		}
	}
	return nil
}

// presenceOpenBatch is how many presence changes one transaction applies
// at open: a node down for long may find many users to take offline, and a
// commit each would be an fsync each.
const presenceOpenBatch = 500

// presenceChange is a user's presence to become p.
type presenceChange struct {
	userID, p string
}

// decayAtOpen applies changes due at open in one transaction, a position
// each, and sends the local users' to other servers. Nothing else writes
// presence before New returns, so the changes computed before still hold;
// nobody listens yet, so nobody is woken.
func (n *Node) decayAtOpen(ctx context.Context, changes []presenceChange, now int64) error {
	recs := make([]presenceRecord, len(changes))
	_, err := n.presence.Commit(len(changes), func(tx *kv.Txn, first uint64) error {
		for i, c := range changes {
			rec := &recs[i]
			if err := tx.GetJSON(presenceKey(c.userID), rec); err != nil {
				return err
			}
			if err := tx.Delete(presenceStreamKey(rec.Pos)); err != nil {
				return err
			}
			rec.Presence, rec.Manual, rec.Pos = c.p, false, first+uint64(i)
			if n.IsLocalUser(c.userID) {
				rec.FedTS = now
			}
			if err := tx.Set(presenceStreamKey(rec.Pos), []byte(c.userID)); err != nil {
				return err
			}
			if err := tx.SetJSON(presenceKey(c.userID), rec); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for i, c := range changes {
		n.schedulePresence(c.userID, recs[i])
		n.federatePresence(ctx, c.userID)
	}
	return nil
}

// stopPresenceDecay stops the presence timer for good and waits for a sweep
// under way; Close calls it before closing the database.
func (n *Node) stopPresenceDecay() {
	w := n.presenceWatch
	if w == nil {
		return
	}
	w.mu.Lock()
	w.closed = true
	if w.timer != nil {
		w.timer.Stop()
	}
	w.mu.Unlock()
	w.sweeps.Wait()
}
