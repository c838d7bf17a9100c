package core

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/edgenode/edgenode/internal/identity"
	"github.com/edgenode/edgenode/kv"
	"github.com/matrix-org/gomatrixserverlib"
	"github.com/matrix-org/gomatrixserverlib/spec"
)

// MaxEventSize is the spec's limit on a PDU's canonical JSON.
const MaxEventSize = 65536

// Batch inputs events into one room, one at a time, against an in-memory
// view of the room, and commits all of them in one transaction. The caller
// holds the room's lock for the batch's whole life, so the view is stable.
type Batch struct {
	Node    *Node
	Tx      *kv.Txn // read snapshot taken after the lock
	RoomID  string
	Room    *RoomRecord // nil until the create event
	Current *State
	Start   *State // current state when the batch began
	Events  []*PendingEvent
	ByID    map[string]*PendingEvent
	// Extra writes go into the batch's commit (an alias made with a room).
	Extra []func(*kv.Txn) error
	// membersChanged: a member event changed the room's state (then the
	// node's shared-servers generation moves on at commit).
	membersChanged bool
}

// PendingEvent is an event input in this batch and not yet committed.
type PendingEvent struct {
	PDU           gomatrixserverlib.PDU
	Record        EventRecord
	Before, After *State
	// Current is the room's current state once this event is accepted.
	Current *State
	// Accepted events are served to clients and get a stream position.
	Accepted bool
	// Outlier events (the state and auth chain a remote join brought) get a
	// stream position, so they are served as state, but no timeline entry.
	Outlier bool
	txnKey  []byte
	// redactTarget is the event this accepted redaction removes content from.
	redactTarget string
}

// InputOpts carries what a local send adds to an event.
type InputOpts struct {
	TxnID    string
	TxnScope TxnScope
	DeviceID string
	Sender   string
}

// InputError explains why an event was rejected or soft-failed.
type InputError struct {
	EventID    string
	SoftFailed bool
	Reason     error
}

func (e *InputError) Error() string {
	kind := "rejected"
	if e.SoftFailed {
		kind = "soft-failed"
	}
	return fmt.Sprintf("event %s %s: %v", e.EventID, kind, e.Reason)
}

func (e *InputError) Unwrap() error { return ErrForbidden }

func (n *Node) newRoomBatch(tx *kv.Txn, roomID string) (*Batch, error) {
	b := &Batch{Node: n, Tx: tx, RoomID: roomID, ByID: map[string]*PendingEvent{}, Current: &State{}, Start: &State{}}
	room, err := LoadRoom(tx, roomID)
	switch {
	case errors.Is(err, ErrNotFound):
		return b, nil
	case err != nil:
		return nil, err
	}
	b.Room = room
	if b.Current, err = n.States.Read(tx, room.State); err != nil {
		return nil, err
	}
	b.Start = b.Current
	return b, nil
}

// LockRoom takes the room's input lock, which room batches (withRoom) hold
// while they run and commit; whatever else writes what a room's commits
// write (unread recounts, out-of-band memberships, backfill, a join's
// chunks) holds it too, so that neither misses the other's writes nor loses
// its transaction to a write conflict.
func (n *Node) LockRoom(ctx context.Context, roomID string) (chanMutex, error) {
	mu := n.roomLocks.forRoom(roomID)
	return mu, mu.lock(ctx)
}

// WithRoom runs fn with the room's lock held and a batch on a fresh read
// snapshot, then commits what fn input. It returns the batch so callers can
// read results.
func (n *Node) WithRoom(ctx context.Context, roomID string, fn func(b *Batch) error) (*Batch, error) {
	mu, err := n.LockRoom(ctx, roomID)
	if err != nil {
		return nil, err
	}
	defer mu.Unlock()
	var b *Batch
	err = n.DB.View(func(tx *kv.Txn) error {
		var err error
		if b, err = n.newRoomBatch(tx, roomID); err != nil {
			return err
		}
		return fn(b)
	})
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := b.commit(); err != nil {
		return nil, err
	}
	return b, nil
}

// PDU finds an event input in this batch or stored.
func (b *Batch) PDU(id string) (gomatrixserverlib.PDU, error) {
	if p, ok := b.ByID[id]; ok {
		return p.PDU, nil
	}
	return b.Node.LoadPDU(b.Tx, id)
}

// record finds the record of an event in this batch or stored.
func (b *Batch) record(id string) (*EventRecord, error) {
	if p, ok := b.ByID[id]; ok {
		return &p.Record, nil
	}
	return LoadEventRecord(b.Tx, id)
}

// stateAfter is the state after the event id.
func (b *Batch) stateAfter(id string) (*State, error) {
	if p, ok := b.ByID[id]; ok {
		if p.Record.Rejected != "" { // p.after is nil
			return nil, fmt.Errorf("prev event %s was rejected", id)
		}
		return p.After, nil
	}
	rec, err := LoadEventRecord(b.Tx, id)
	if err != nil {
		return nil, err
	}
	if rec.Rejected != "" {
		return nil, fmt.Errorf("prev event %s was rejected", id)
	}
	return b.Node.States.Read(b.Tx, rec.StateAfter)
}

// authProvider gives the events that auth of ev needs, looked up in s.
func (b *Batch) authProvider(s *State, needed gomatrixserverlib.StateNeeded) (*gomatrixserverlib.AuthEvents, error) {
	var evs []gomatrixserverlib.PDU
	for _, t := range needed.Tuples() {
		id, ok := s.Get(t.EventType, t.StateKey)
		if !ok {
			continue
		}
		p, err := b.PDU(id)
		if err != nil {
			return nil, err
		}
		evs = append(evs, p)
	}
	return gomatrixserverlib.NewAuthEvents(evs)
}

// Build creates, signs and checks a new local event on top of the batch's
// current view. It does not input it.
func (b *Batch) Build(proto gomatrixserverlib.ProtoEvent, version gomatrixserverlib.RoomVersion) (gomatrixserverlib.PDU, error) {
	if b.Room != nil {
		version = b.Room.Version
		prevs, depth, err := b.prevEventsForLocal()
		if err != nil {
			return nil, err
		}
		proto.PrevEvents, proto.Depth = prevs, depth
	} else {
		proto.PrevEvents = []string{}
		proto.Depth = 1
	}
	verImpl, err := gomatrixserverlib.GetRoomVersion(version)
	if err != nil || !supportedRoomVersions[version] {
		return nil, fmt.Errorf("room version %q: %w", version, ErrUnsupportedRoomVersion)
	}
	proto.RoomID = b.RoomID
	builder := verImpl.NewEventBuilderFromProtoEvent(&proto)
	needed, err := gomatrixserverlib.StateNeededForProtoEvent(&proto)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadInput, err)
	}
	provider, err := b.authProvider(b.Current, needed)
	if err != nil {
		return nil, err
	}
	if err := builder.AddAuthEvents(provider); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrForbidden, err)
	}
	ev, err := builder.Build(b.Node.Now(), spec.ServerName(b.Node.serverName), identity.KeyID, b.Node.key)
	if err != nil {
		// Build checks sizes itself (event, type, state key), before the
		// check below can: those are ErrTooLarge, not bad input.
		var ve gomatrixserverlib.EventValidationError
		if errors.As(err, &ve) && ve.Code == gomatrixserverlib.EventValidationTooLarge {
			return nil, fmt.Errorf("%w: %v", ErrTooLarge, err)
		}
		return nil, fmt.Errorf("%w: %v", ErrBadInput, err)
	}
	if len(ev.JSON()) > MaxEventSize {
		return nil, fmt.Errorf("event is %d bytes: %w", len(ev.JSON()), ErrTooLarge)
	}
	if err := gomatrixserverlib.Allowed(ev, provider, UserIDForSender); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrForbidden, err)
	}
	ev.EventID() // cache the ID before the PDU is shared
	return ev, nil
}

// Input runs ev through auth, state and soft-fail checks and adds it to the
// batch. An event that fails is still kept (as rejected or soft-failed) and
// an *InputError says why; an event already stored is a no-op.
func (b *Batch) Input(ev gomatrixserverlib.PDU, opts InputOpts) error {
	id := ev.EventID()
	if ev.RoomID().String() != b.RoomID {
		return fmt.Errorf("%w: event %s is not in room %s", ErrBadInput, id, b.RoomID)
	}
	if _, ok := b.ByID[id]; ok {
		return nil
	}
	if ok, err := b.Tx.Has(EventKey(id)); err != nil || ok {
		return err
	}
	if err := b.Node.RejectedError(id, b.RoomID); err != nil {
		return err // rejected before, and not stored (rejectedmarks.go)
	}
	if err := b.RejectedRefs(id, ev.PrevEventIDs(), ev.AuthEventIDs()); err != nil {
		return err
	}
	if !supportedRoomVersions[ev.Version()] {
		return fmt.Errorf("room version %q: %w", ev.Version(), ErrUnsupportedRoomVersion)
	}
	p := &PendingEvent{PDU: ev, Record: EventRecord{
		RoomID: b.RoomID, Version: string(ev.Version()), JSON: ev.JSON(), TxnID: opts.TxnID, DeviceID: opts.DeviceID,
	}}
	if opts.TxnID != "" {
		p.txnKey = txnKey(opts.Sender, opts.DeviceID, opts.TxnScope, opts.TxnID)
	}
	b.Events = append(b.Events, p)
	b.ByID[id] = p
	err := b.evaluate(p)
	var inputErr *InputError
	if err != nil && !errors.As(err, &inputErr) {
		b.drop(p) // not a verdict on the event: keep nothing of it
	}
	return err
}

// drop removes the last input event from the batch.
func (b *Batch) drop(p *PendingEvent) {
	if n := len(b.Events); n > 0 && b.Events[n-1] == p {
		b.Events = b.Events[:n-1]
		delete(b.ByID, p.PDU.EventID())
	}
}

// evaluate decides whether p is rejected, soft-failed or accepted, and
// advances the room past it when accepted.
func (b *Batch) evaluate(p *PendingEvent) error {
	ev, id := p.PDU, p.PDU.EventID()
	reject := func(err error) error {
		p.Record.Rejected = err.Error()
		p.Before, p.After = nil, nil
		p.Record.StateBefore, p.Record.StateAfter = "", ""
		return &InputError{EventID: id, Reason: err}
	}

	isCreate := ev.Type() == spec.MRoomCreate && ev.StateKeyEquals("")
	if isCreate != (b.Room == nil) {
		if isCreate {
			return reject(errors.New("room already exists"))
		}
		return fmt.Errorf("room %s: %w", b.RoomID, ErrNotFound)
	}
	if b.Room != nil && ev.Version() != b.Room.Version {
		return reject(fmt.Errorf("event version %s differs from room version %s", ev.Version(), b.Room.Version))
	}

	before, err := b.stateBefore(ev)
	if err != nil {
		return err
	}
	p.Before = before
	p.Record.StateBefore = before.ID()

	// Auth against the event's own auth events, then against the state before it.
	authEvents, err := b.ownAuthEvents(ev)
	if err != nil {
		return reject(err)
	}
	if err := gomatrixserverlib.Allowed(ev, authEvents, UserIDForSender); err != nil {
		return reject(fmt.Errorf("auth events: %w", err))
	}
	needed := gomatrixserverlib.StateNeededForAuth([]gomatrixserverlib.PDU{ev})
	atBefore, err := b.authProvider(before, needed)
	if err != nil {
		return err
	}
	if err := gomatrixserverlib.Allowed(ev, atBefore, UserIDForSender); err != nil {
		return reject(fmt.Errorf("state before event: %w", err))
	}

	p.After = before
	if sk := ev.StateKey(); sk != nil {
		p.After = before.With(ev.Type(), *sk, id)
	}
	p.Record.StateAfter = p.After.ID()

	// Soft-fail: the library does not do this; check against current state.
	if b.Room != nil && before.ID() != b.Room.State {
		atCurrent, err := b.authProvider(b.Current, needed)
		if err != nil {
			return err
		}
		if err := gomatrixserverlib.Allowed(ev, atCurrent, UserIDForSender); err != nil {
			p.Record.SoftFailed = true
			return &InputError{EventID: id, SoftFailed: true, Reason: err}
		}
	}
	p.Accepted = true
	if err := b.advance(p); err != nil {
		return err
	}
	if ev.Type() == spec.MRoomRedaction {
		b.noteRedaction(p, before)
	}
	return nil
}

// stateBefore is the state before ev: after its one prev event, or the
// resolution of the states after each of its prev events.
func (b *Batch) stateBefore(ev gomatrixserverlib.PDU) (*State, error) {
	prevs := ev.PrevEventIDs()
	if len(prevs) == 0 {
		return &State{}, nil
	}
	states := make([]*State, 0, len(prevs))
	for _, id := range prevs {
		rec, err := b.record(id)
		if err != nil {
			return nil, fmt.Errorf("prev event: %w", err)
		}
		if rec.RoomID != b.RoomID {
			return nil, fmt.Errorf("%w: prev event %s is in another room", ErrBadInput, id)
		}
		s, err := b.stateAfter(id)
		if err != nil {
			return nil, err
		}
		states = append(states, s)
	}
	return b.resolve(states)
}

// ownAuthEvents loads the events ev names as its auth events; each must be
// stored, in the same room and not rejected.
func (b *Batch) ownAuthEvents(ev gomatrixserverlib.PDU) (*gomatrixserverlib.AuthEvents, error) {
	ids := ev.AuthEventIDs()
	evs := make([]gomatrixserverlib.PDU, 0, len(ids))
	for _, id := range ids {
		rec, err := b.record(id)
		if err != nil {
			return nil, fmt.Errorf("auth event: %w", err)
		}
		if rec.Rejected != "" {
			return nil, fmt.Errorf("auth event %s was rejected", id)
		}
		if rec.RoomID != b.RoomID {
			return nil, fmt.Errorf("auth event %s is in another room", id)
		}
		p, err := b.PDU(id)
		if err != nil {
			return nil, err
		}
		evs = append(evs, p)
	}
	return gomatrixserverlib.NewAuthEvents(evs)
}

// advance moves the room's forward extremities and current state past an
// accepted event. The current state is the resolution of the states after
// the extremities; as many of them share a state (forks of messages), only
// the distinct states are resolved, taken from the room head without
// loading the extremities (extStates).
func (b *Batch) advance(p *PendingEvent) error {
	ev := p.PDU
	if b.Room == nil {
		b.Room = &RoomRecord{Version: ev.Version()}
	}
	prevs := ev.PrevEventIDs()
	oldExt, oldStates := b.Room.Extremities, []string(nil)
	if len(oldExt) > 0 {
		var err error
		if oldStates, err = b.extStates(); err != nil {
			return err
		}
	}
	linear := len(prevs) == len(oldExt)
	ext := make([]string, 1, len(oldExt)+1)
	states := make([]string, 1, len(oldExt)+1)
	ext[0], states[0] = ev.EventID(), p.After.ID()
	for i, id := range oldExt {
		if slices.Contains(prevs, id) {
			continue
		}
		linear = false
		ext = append(ext, id)
		states = append(states, oldStates[i])
	}
	current := p.After
	if !linear {
		var distinct []*State
		seen := map[string]bool{}
		for i, sid := range states {
			if seen[sid] {
				continue
			}
			seen[sid] = true
			s, err := b.stateOf(ext[i], sid)
			if err != nil {
				return err
			}
			distinct = append(distinct, s)
		}
		s, err := b.resolve(distinct)
		if err != nil {
			return err // the head is left as it was: the event is dropped
		}
		current = s
	}
	b.Room.Extremities, b.Room.ExtStates = ext, states
	b.Room.Depth = max(b.Room.Depth, ev.Depth())
	b.Current = current
	b.Room.State = current.ID()
	p.Current = current
	return nil
}
