package node

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/edgenode/edgenode/kv"
	"github.com/edgenode/edgenode/node/core"
	"github.com/matrix-org/gomatrixserverlib/spec"
)

// Typing limits. A client says how long its user types for; the node caps
// that so a client that dies mid-sentence shows its user typing for two
// minutes at most, and picks the usual 30 seconds when the client says
// nothing useful.
const (
	// MaxTypingTimeout is the longest a typing notice lasts.
	MaxTypingTimeout = 2 * time.Minute
	// DefaultTypingTimeout is how long a notice without a timeout lasts.
	DefaultTypingTimeout = 30 * time.Second
	// typingGrace is how long a room whose last typist stopped keeps its
	// entry, so a reader who synced before the stop learns of it from the
	// room's own position. After that the entry goes (memory stays bounded by
	// who is typing now) and the room reports typing.floor instead.
	typingGrace = 5 * time.Minute
)

// streamTypingEpoch numbers the node's runs. Typing is kept in memory only,
// yet positions handed to clients in sync tokens must keep growing across
// restarts, or a token from before a restart would hide the first typing
// changes after it. Each run's positions start at its epoch << 32.
const streamTypingEpoch = "typing_epoch"

// typingState is who is typing in which room, in memory: typing is ephemeral
// in the spec, and writing it to disk would cost a sync write per keystroke
// burst. One timer serves every room: it fires at the earliest deadline
// (a typist's expiry or an empty room's end of grace), so there is no
// goroutine per typist.
type typingState struct {
	mu sync.Mutex
	// pos is the last typing position handed out.
	pos uint64
	// floor is the position reported for rooms without an entry: the
	// position of the last change in any room whose entry was dropped (at
	// start, the run's first position, which is after every position of
	// earlier runs, when whoever was typing has stopped).
	floor uint64
	rooms map[string]*roomTyping
	timer *time.Timer
	// due is when timer fires; zero while it is not armed.
	due    time.Time
	closed bool
}

// roomTyping is one room's typists.
type roomTyping struct {
	// users maps each typist to when their typing expires.
	users map[string]time.Time
	// pos is the position of the room's last typing change.
	pos uint64
	// emptySince is when the last typist stopped; zero while anyone types.
	emptySince time.Time
}

// openTyping numbers this run and returns its empty typing state.
func openTyping(db *kv.DB) (*typingState, error) {
	epochs, err := db.Stream(streamTypingEpoch)
	if err != nil {
		return nil, err
	}
	epoch, err := epochs.Commit(1, func(*kv.Txn, uint64) error { return nil })
	if err != nil {
		return nil, fmt.Errorf("typing epoch: %w", err)
	}
	base := epoch << 32
	return &typingState{pos: base, floor: base, rooms: map[string]*roomTyping{}}, nil
}

// TypingPosition is the latest typing position. Positions are not stored but
// still grow across restarts.
func (n *Node) TypingPosition() uint64 {
	n.typing.mu.Lock()
	defer n.typing.mu.Unlock()
	return n.typing.pos
}

// Typing returns who is typing in a room, sorted, and the position of the
// room's last typing change. A room nobody has typed in lately reports no
// typists and the position of the last change the node no longer tracks per
// room, so a reader whose position is older learns (spuriously but
// harmlessly) that nobody is typing, rather than missing a stop.
func (n *Node) Typing(roomID string) (userIDs []string, pos uint64) {
	t := n.typing
	t.mu.Lock()
	defer t.mu.Unlock()
	r, ok := t.rooms[roomID]
	if !ok {
		return nil, t.floor
	}
	userIDs = make([]string, 0, len(r.users))
	for u := range r.users {
		userIDs = append(userIDs, u)
	}
	slices.Sort(userIDs)
	return userIDs, r.pos
}

// SetTyping marks a user as typing in a room for timeout (capped at
// MaxTypingTimeout; DefaultTypingTimeout when not positive), or as not
// typing. The user must be joined. A change in who is typing, including an
// expiry, gets a new position and wakes the room's local members; renewing
// a typist's timeout changes nothing anyone sees and wakes nobody.
func (n *Node) SetTyping(ctx context.Context, userID, roomID string, typing bool, timeout time.Duration) error {
	m, err := n.Membership(ctx, roomID, userID)
	if err != nil {
		return err
	}
	if m.Membership != spec.Join {
		return fmt.Errorf("%w: %s", core.ErrNotJoined, roomID)
	}
	if timeout <= 0 {
		timeout = DefaultTypingTimeout
	}
	timeout = min(timeout, MaxTypingTimeout)

	t := n.typing
	t.mu.Lock()
	now := n.Now()
	r := t.rooms[roomID]
	changed := false
	if typing {
		if r == nil {
			r = &roomTyping{users: map[string]time.Time{}, pos: t.floor}
			t.rooms[roomID] = r
		}
		_, was := r.users[userID]
		changed = !was
		r.users[userID] = now.Add(timeout)
		r.emptySince = time.Time{}
		n.armTyping(now.Add(timeout))
	} else if r != nil {
		if _, was := r.users[userID]; was {
			changed = true
			delete(r.users, userID)
			if len(r.users) == 0 {
				r.emptySince = now
				n.armTyping(now.Add(typingGrace))
			}
		}
	}
	if changed {
		t.pos++
		r.pos = t.pos
	}
	t.mu.Unlock()
	n.federateTyping(ctx, userID, roomID, typing, changed)
	if !changed {
		return nil
	}
	members, err := n.localJoinedMembers(roomID)
	if err != nil {
		return err
	}
	n.Notifier.Wake(members...)
	return nil
}

// armTyping makes the typing timer fire no later than at. Callers hold
// typing.mu.
func (n *Node) armTyping(at time.Time) {
	t := n.typing
	if t.closed || (!t.due.IsZero() && !at.Before(t.due)) {
		return
	}
	t.due = at
	d := max(at.Sub(n.Now()), 0)
	if t.timer == nil {
		t.timer = time.AfterFunc(d, n.sweepTyping)
		return
	}
	t.timer.Reset(d)
}

// sweepTyping runs when the typing timer fires: it drops expired typists,
// giving each room that changed a new position, drops rooms empty for longer
// than typingGrace, re-arms the timer for the next deadline and wakes the
// local members of the rooms that changed.
func (n *Node) sweepTyping() {
	t := n.typing
	t.mu.Lock()
	defer t.mu.Unlock() // held across the database read so Close waits for it
	if t.closed {
		return
	}
	now := n.Now()
	t.due = time.Time{}
	var changed []string
	var stopped []typingKey // local typists who timed out: other servers hear of it
	var next time.Time
	earliest := func(at time.Time) {
		if next.IsZero() || at.Before(next) {
			next = at
		}
	}
	for roomID, r := range t.rooms {
		expired := false
		for u, exp := range r.users {
			if !exp.After(now) {
				delete(r.users, u)
				expired = true
				if n.IsLocalUser(u) {
					stopped = append(stopped, typingKey{roomID, u})
				}
			} else {
				earliest(exp)
			}
		}
		if expired {
			t.pos++
			r.pos = t.pos
			changed = append(changed, roomID)
			if len(r.users) == 0 {
				r.emptySince = now
			}
		}
		if len(r.users) == 0 {
			if end := r.emptySince.Add(typingGrace); now.Before(end) {
				earliest(end)
			} else {
				t.floor = max(t.floor, r.pos)
				delete(t.rooms, roomID)
			}
		}
	}
	if !next.IsZero() {
		n.armTyping(next)
	}
	if len(changed) == 0 {
		return
	}
	var wake []string
	err := n.DB.View(func(tx *kv.Txn) error {
		for _, roomID := range changed {
			if err := localJoinedIn(tx, roomID, func(u string) { wake = append(wake, u) }); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		n.Logger().Warn("typing: members of expired rooms not woken", "err", err)
	}
	n.Notifier.Wake(wake...)
	for _, k := range stopped {
		n.federateTyping(context.Background(), k.userID, k.roomID, false, true)
	}
}

// stopTyping stops the typing timer for good; Close calls it before closing
// the database the timer's callback reads.
func (n *Node) stopTyping() {
	t := n.typing
	t.mu.Lock()
	defer t.mu.Unlock()
	t.closed = true
	if t.timer != nil {
		t.timer.Stop()
	}
}
