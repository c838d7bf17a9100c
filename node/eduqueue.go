package node

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgenode/edgenode/kv"
	"github.com/edgenode/edgenode/node/core"
	"github.com/edgenode/edgenode/node/e2ee"
)

// Outbound EDU queues.
//
// EDUs for another server wait in a durable per-destination queue beside
// its PDU queue (fedqueue.go) and travel in the same transactions: up to
// maxTxnEDUs of them with up to 50 PDUs. The transaction in flight lists
// the exact entries it carries (eduDestRecord.InFlight), so a retry, even
// after a restart, resends the same content under the same ID, and the ack
// removes exactly those entries, whatever was queued meanwhile.
//
// Entries come in two classes:
//
//   - reliable (m.direct_to_device, m.device_list_update): never dropped.
//     To-device messages are queued in the transaction that accepts them
//     from the client, so one acknowledged to the client survives a crash.
//     A destination holding DefaultEDUReliableCap of them refuses further
//     to-device sends to its users (M_TOO_LARGE) instead of dropping any:
//     the sending client learns of it. Device-list updates are coalesced per (user,
//     device), which bounds them by the devices the node's users have had;
//     they are accepted past the cap, since refusing one would fail a
//     login or a key upload.
//   - ephemeral (m.typing, m.presence, m.receipt): coalesced, so at most
//     the latest notice per (room, user), user or (room, user, thread) is
//     pending, and capped at DefaultEDUEphemeralCap per destination (not
//     counting those in flight), past which the oldest are dropped (logged
//     once per run of drops).
//
// Entries carried by the transaction in flight are neither coalesced away
// nor dropped: a retry must carry what the first attempt did.
//
// Writers are the commits of the changes themselves (to-device, device
// lists), a short transaction after ephemeral changes (serialized by
// eduState.mu) and the sender (NextTransaction and acks, under the room
// stream's lock). They may conflict on a destination's record; all of
// them retry on a conflict (e2ee.RetryConflicts).

// eduClass is an EDU queue entry's class; it is part of the entry's key,
// so each class is scanned without stepping over the other.
type eduClass uint8

const (
	// eduReliable entries are never dropped.
	eduReliable eduClass = 0
	// eduEphemeral entries are coalesced and dropped oldest-first past the
	// cap.
	eduEphemeral eduClass = 1
)

// EDU queue limits.
const (
	// DefaultEDUEphemeralCap bounds the ephemeral EDUs queued for one
	// destination.
	DefaultEDUEphemeralCap = 1000
	// DefaultEDUReliableCap is how many reliable EDUs one destination may
	// hold before to-device sends to its users are refused.
	DefaultEDUReliableCap = 10000
	// maxTxnEDUs is the spec's limit of EDUs per transaction.
	maxTxnEDUs = 100
	// maxTxnEDUBytes bounds the EDU content of one transaction, well under
	// the receiver's 1 MiB body limit.
	maxTxnEDUBytes = 512 << 10
)

// eduState is the node's in-memory side of the EDU queues.
type eduState struct {
	// seq is the last queue sequence number handed out (see streamEDUEpoch).
	seq atomic.Uint64
	// mu serializes the ephemeral enqueues, which would otherwise keep
	// conflicting with each other on the same destinations.
	mu sync.Mutex

	capMu                     sync.Mutex
	ephemeralCap, reliableCap int // 0: the defaults
	typingMu                  sync.Mutex
	typingSent                map[typingKey]time.Time // local typists' last notice sent
}

// typingKey names one user's typing in one room.
type typingKey struct{ roomID, userID string }

// queuedEDU is one entry of a destination's EDU queue.
type queuedEDU struct {
	Type    string          `json:"t"`
	Content json.RawMessage `json:"c"`
	// Key is the coalescing key: a newer entry with the same key replaces
	// this one while it is not in flight. "" for none.
	Key string `json:"k,omitempty"`
}

// eduRef names a queue entry.
type eduRef struct {
	Class eduClass `json:"c"`
	Seq   uint64   `json:"s"`
}

// eduDestRecord is a destination's EDU bookkeeping.
type eduDestRecord struct {
	Reliable  int `json:"r,omitempty"`
	Ephemeral int `json:"e,omitempty"`
	// Dropped counts ephemeral entries dropped since the last ack, for
	// logging once per run of drops.
	Dropped int `json:"d,omitempty"`
	// InFlight lists the entries the transaction in flight carries.
	InFlight []eduRef `json:"f,omitempty"`
}

func (r *eduDestRecord) pending() int { return r.Reliable + r.Ephemeral }

func (r *eduDestRecord) add(c eduClass, k int) {
	if c == eduReliable {
		r.Reliable = max(0, r.Reliable+k)
	} else {
		r.Ephemeral = max(0, r.Ephemeral+k)
	}
}

func (r *eduDestRecord) inFlightCount(c eduClass) int {
	k := 0
	for _, f := range r.InFlight {
		if f.Class == c {
			k++
		}
	}
	return k
}

func (r *eduDestRecord) inFlight(c eduClass, seq uint64) bool {
	return slices.Contains(r.InFlight, eduRef{c, seq})
}

// OutboundEDU is one EDU of an outbound transaction.
type OutboundEDU struct {
	Type    string
	Content json.RawMessage
}

// openEDUQueue numbers this run's queue entries after every earlier run's.
func (n *Node) openEDUQueue() error {
	epochs, err := n.DB.Stream(streamEDUEpoch)
	if err != nil {
		return err
	}
	epoch, err := epochs.Commit(1, func(*kv.Txn, uint64) error { return nil })
	if err != nil {
		return fmt.Errorf("edu epoch: %w", err)
	}
	n.edu.seq.Store(epoch << 32)
	return nil
}

// setEDUQueueCaps changes the per-destination caps (tests).
func (n *Node) setEDUQueueCaps(ephemeral, reliable int) {
	n.edu.capMu.Lock()
	defer n.edu.capMu.Unlock()
	n.edu.ephemeralCap, n.edu.reliableCap = ephemeral, reliable
}

func (n *Node) eduCaps() (ephemeral, reliable int) {
	n.edu.capMu.Lock()
	defer n.edu.capMu.Unlock()
	ephemeral, reliable = n.edu.ephemeralCap, n.edu.reliableCap
	if ephemeral <= 0 {
		ephemeral = DefaultEDUEphemeralCap
	}
	if reliable <= 0 {
		reliable = DefaultEDUReliableCap
	}
	return ephemeral, reliable
}

func loadEDUDest(tx *kv.Txn, dest string) (eduDestRecord, error) {
	var rec eduDestRecord
	err := tx.GetJSON(eduDestKey(dest), &rec)
	if errors.Is(err, kv.ErrNotFound) {
		err = nil
	}
	return rec, err
}

func saveEDUDest(tx *kv.Txn, dest string, rec eduDestRecord) error {
	if rec.pending() == 0 && len(rec.InFlight) == 0 {
		return tx.Delete(eduDestKey(dest))
	}
	return tx.SetJSON(eduDestKey(dest), rec)
}

// errEDUQueueFull refuses reliable EDUs for a destination at its cap.
var errEDUQueueFull = fmt.Errorf("%w: outbound queue full", core.ErrTooLarge)

// MaxEDUDestinations bounds the destinations with EDUs waiting: a to-device
// message to a server with none waiting is refused (errEDUQueueFull) once
// this many have some. Servers sharing a room are few; without the bound,
// messages to made-up (but well-formed) server names would each start a
// queue that never drains.
const MaxEDUDestinations = 512

// checkReliableRoom fails with errEDUQueueFull if dest cannot take k more
// reliable EDUs, or has none waiting while MaxEDUDestinations others do.
func (n *Node) checkReliableRoom(tx *kv.Txn, dest string, k int) error {
	rec, err := loadEDUDest(tx, dest)
	if err != nil {
		return err
	}
	if _, limit := n.eduCaps(); rec.Reliable+k > limit {
		return fmt.Errorf("%w: %d messages wait for %s", errEDUQueueFull, rec.Reliable, dest)
	}
	if rec.pending() > 0 || len(rec.InFlight) > 0 {
		return nil
	}
	// A new destination: count the others (keys only, stopping at the
	// bound), which costs little next to the rarity of new destinations.
	dests := 0
	err = tx.Each(kv.Scan{Prefix: kv.Key(tEDUDest), KeysOnly: true}, func(_, _ []byte) (bool, error) {
		dests++
		return dests < MaxEDUDestinations, nil
	})
	if err != nil {
		return err
	}
	if dests >= MaxEDUDestinations {
		return fmt.Errorf("%w: EDUs wait for %d other servers", errEDUQueueFull, dests)
	}
	return nil
}

// enqueueEDU queues e for dest in tx, replacing the pending entry with the
// same coalescing key (unless it is in flight) and, for ephemeral EDUs,
// dropping the oldest past the cap.
func (n *Node) enqueueEDU(tx *kv.Txn, dest string, c eduClass, e queuedEDU) error {
	rec, err := loadEDUDest(tx, dest)
	if err != nil {
		return err
	}
	if e.Key != "" {
		old, err := tx.Get(eduKeyKey(dest, e.Key))
		switch {
		case errors.Is(err, kv.ErrNotFound):
		case err != nil:
			return err
		case len(old) == 8:
			seq := binary.BigEndian.Uint64(old)
			if !rec.inFlight(c, seq) {
				ok, err := tx.Has(eduQueueKey(dest, c, seq))
				if err != nil {
					return err
				}
				if ok {
					if err := tx.Delete(eduQueueKey(dest, c, seq)); err != nil {
						return err
					}
					rec.add(c, -1)
				}
			}
		}
	}
	seq := n.edu.seq.Add(1)
	if err := tx.SetJSON(eduQueueKey(dest, c, seq), e); err != nil {
		return err
	}
	if e.Key != "" {
		if err := tx.Set(eduKeyKey(dest, e.Key), binary.BigEndian.AppendUint64(nil, seq)); err != nil {
			return err
		}
	}
	rec.add(c, 1)
	// Entries in flight are not counted against the cap: they cannot be
	// dropped, and the newest notice should not go in their stead.
	if limit, _ := n.eduCaps(); c == eduEphemeral && rec.Ephemeral-rec.inFlightCount(eduEphemeral) > limit {
		dropped, err := dropOldestEDUs(tx, dest, &rec, rec.Ephemeral-rec.inFlightCount(eduEphemeral)-limit)
		if err != nil {
			return err
		}
		if dropped > 0 && rec.Dropped == 0 {
			n.Logger().Warn("outbound EDU queue full: dropping oldest typing, presence and receipt notices",
				"destination", dest, "cap", limit)
		}
		rec.Dropped += dropped
	}
	return saveEDUDest(tx, dest, rec)
}

// dropOldestEDUs deletes up to k of dest's oldest ephemeral entries that
// are not in flight and returns how many it deleted.
func dropOldestEDUs(tx *kv.Txn, dest string, rec *eduDestRecord, k int) (int, error) {
	type victim struct {
		seq uint64
		key string
	}
	var victims []victim
	err := tx.Each(kv.Scan{Prefix: eduClassPrefix(dest, eduEphemeral)}, func(key, v []byte) (bool, error) {
		seq, err := kv.LastUint(key)
		if err != nil {
			return false, err
		}
		if rec.inFlight(eduEphemeral, seq) {
			return true, nil
		}
		var e queuedEDU
		if err := json.Unmarshal(v, &e); err != nil {
			return false, fmt.Errorf("edu queue entry %d: %w", seq, err)
		}
		victims = append(victims, victim{seq, e.Key})
		return len(victims) < k, nil
	})
	if err != nil {
		return 0, err
	}
	for _, v := range victims {
		if err := removeEDU(tx, dest, eduEphemeral, v.seq, v.key); err != nil {
			return 0, err
		}
	}
	rec.add(eduEphemeral, -len(victims))
	return len(victims), nil
}

// removeEDU deletes a queue entry and its coalescing index if the index
// still points at it.
func removeEDU(tx *kv.Txn, dest string, c eduClass, seq uint64, key string) error {
	if err := tx.Delete(eduQueueKey(dest, c, seq)); err != nil {
		return err
	}
	if key == "" {
		return nil
	}
	cur, err := tx.Get(eduKeyKey(dest, key))
	if errors.Is(err, kv.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if len(cur) == 8 && binary.BigEndian.Uint64(cur) == seq {
		return tx.Delete(eduKeyKey(dest, key))
	}
	return nil
}

// toOutbound is a queue entry as a transaction carries it.
func toOutbound(e queuedEDU) OutboundEDU { return OutboundEDU{Type: e.Type, Content: e.Content} }

// scanEDUs appends to refs and out up to max entries of one class, after
// skipping the first skip, while the byte budget lasts (the first entry of
// a transaction is always taken, so no entry can block a queue).
func scanEDUs(tx *kv.Txn, dest string, c eduClass, skip, max int, budget *int, refs *[]eduRef, out *[]OutboundEDU) error {
	if max <= 0 {
		return nil
	}
	taken := 0
	return tx.Each(kv.Scan{Prefix: eduClassPrefix(dest, c)}, func(key, v []byte) (bool, error) {
		if skip > 0 {
			skip--
			return true, nil
		}
		seq, err := kv.LastUint(key)
		if err != nil {
			return false, err
		}
		if len(*out) > 0 && len(v) > *budget {
			return false, nil
		}
		var e queuedEDU
		if err := json.Unmarshal(v, &e); err != nil {
			return false, fmt.Errorf("edu queue entry %d: %w", seq, err)
		}
		*budget -= len(v)
		*refs = append(*refs, eduRef{c, seq})
		*out = append(*out, toOutbound(e))
		taken++
		return taken < max, nil
	})
}

// readEDUs picks up to maxN (at most maxTxnEDUs) EDUs for a new
// transaction for dest: ephemeral ones (small, and stale soon) fill up to
// half, reliable ones the rest, and ephemeral ones again whatever room is
// left.
func readEDUs(tx *kv.Txn, dest string, maxN int) ([]eduRef, []OutboundEDU, error) {
	var refs []eduRef
	var out []OutboundEDU
	maxN = min(maxN, maxTxnEDUs)
	budget := maxTxnEDUBytes
	if err := scanEDUs(tx, dest, eduEphemeral, 0, maxN/2, &budget, &refs, &out); err != nil {
		return nil, nil, err
	}
	first := len(out)
	if err := scanEDUs(tx, dest, eduReliable, 0, maxN-len(out), &budget, &refs, &out); err != nil {
		return nil, nil, err
	}
	if first == maxN/2 {
		if err := scanEDUs(tx, dest, eduEphemeral, first, maxN-len(out), &budget, &refs, &out); err != nil {
			return nil, nil, err
		}
	}
	return refs, out, nil
}

// loadEDUs reads the entries refs names; ones gone (never expected) are
// skipped.
func loadEDUs(tx *kv.Txn, dest string, refs []eduRef) ([]OutboundEDU, error) {
	var out []OutboundEDU
	for _, r := range refs {
		var e queuedEDU
		err := tx.GetJSON(eduQueueKey(dest, r.Class, r.Seq), &e)
		if errors.Is(err, kv.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, toOutbound(e))
	}
	return out, nil
}

// ackEDUs removes the entries of dest's transaction in flight: delivered.
func ackEDUs(tx *kv.Txn, dest string) error {
	rec, err := loadEDUDest(tx, dest)
	if err != nil || len(rec.InFlight) == 0 {
		return err
	}
	for _, r := range rec.InFlight {
		var e queuedEDU
		err := tx.GetJSON(eduQueueKey(dest, r.Class, r.Seq), &e)
		if errors.Is(err, kv.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		if err := removeEDU(tx, dest, r.Class, r.Seq, e.Key); err != nil {
			return err
		}
		rec.add(r.Class, -1)
	}
	rec.InFlight, rec.Dropped = nil, 0
	return saveEDUDest(tx, dest, rec)
}

// queueEphemeral queues an ephemeral EDU for dests in a transaction of its
// own and tells the sender. Failures are logged, not returned: the local
// change they follow has happened and stands.
func (n *Node) queueEphemeral(ctx context.Context, dests []string, e queuedEDU) {
	dests = slices.DeleteFunc(slices.Clone(dests), func(d string) bool { return d == n.ServerName() || d == "" })
	if len(dests) == 0 {
		return
	}
	n.edu.mu.Lock()
	err := e2ee.RetryConflicts(ctx, func() error {
		return n.DB.Update(func(tx *kv.Txn) error {
			for _, d := range dests {
				if err := n.enqueueEDU(tx, d, eduEphemeral, e); err != nil {
					return err
				}
			}
			return nil
		})
	})
	n.edu.mu.Unlock()
	if err != nil {
		n.Logger().Warn("outbound EDU not queued", "edu_type", e.Type, "err", err)
		return
	}
	n.fedQueued(dests)
}
