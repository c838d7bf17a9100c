package inbound

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/edgenode/edgenode/kv"
	"github.com/edgenode/edgenode/node/core"
	"github.com/matrix-org/gomatrixserverlib"
	"github.com/matrix-org/gomatrixserverlib/spec"
)

// Joining a big room in bounded transactions.
//
// A send_join answer holds the room's whole state and its auth chain: for a
// room of N members, N member events, N membership index entries and the
// state blocks naming them. Badger refuses a transaction over 15% of its
// memtable (about 300 KiB and 3,000 records on the phone profile), so one
// commit of all that fails from about 150 members on. joinVia therefore
// writes, before the join's own commit and in transactions of at most
// joinChunkBytes and joinChunkWrites each (prewriteJoin):
//
//  1. the state blocks of the states before and after the join, and then
//     their snapshot records (content-addressed: nothing refers to them
//     until an event or the room does);
//  2. the state and auth chain events, as outliers with a stream position
//     each, as the join's commit gave them. They carry the room ID, but
//     nothing serves an event of a room that is not stored here: clients
//     reach events through the room (its record, the room stream, the
//     user's membership), federation through remoteEvent, which needs the
//     room stored;
//  3. the membership index entries of the remote members of the state
//     before the join, and the room's joined-servers counts of their
//     servers, as the join's commit would have written them. These index
//     remote users only: whoever reads them asks about a room a local user
//     shares (localJoinedIn, the room's record), which a room not stored
//     here is not.
//
// The join's commit (joinVia) then starts from that state instead of the
// empty one, so it writes only the local members' entries, the join, the
// room record and what hangs off them. Every chunk checks, under the room's
// lock, that the room is still not stored, and writes the same records
// again when retried, so a crash between chunks leaves a state from which
// a retried join succeeds. The membership entries a chunk wrote are listed
// under tJoinPending until the join commits, so that a retry (whose state
// may differ) first removes them (dropPendingJoin).
const (
	// joinChunkBytes bounds what one prewrite transaction writes
	// (estimated: keys and values). A fifth of the phone profile's limit:
	// the estimates are rough.
	joinChunkBytes = 64 << 10
	// joinChunkWrites bounds the records one prewrite transaction writes
	// (an event is two).
	joinChunkWrites = 512
	// joinChunkMembers is how many membership entries one transaction
	// writes (about 250 bytes each with hex server names).
	joinChunkMembers = 200

	// tJoinPending lists, while a remote join of a room is unfinished, the
	// remote users whose membership entries it wrote: room ID, first user
	// of a chunk -> JSON list of the chunk's users.
	tJoinPending = "joinpending"
)

func joinPendingPrefix(roomID string) []byte { return kv.Key(tJoinPending, roomID) }

func joinPendingKey(roomID, firstUser string) []byte {
	return kv.Key(tJoinPending, roomID, firstUser)
}

// prewrite is one unit of a chunked write: its estimated size in bytes and
// records, whether it takes a stream position, and the write.
type prewrite struct {
	size, records int
	pos           bool
	fn            func(tx *kv.Txn, pos uint64) error
}

// commitChunks commits writes in as few transactions as the bounds allow,
// each under the room's lock and only while the room is not stored.
func (n *Inbound) commitChunks(ctx context.Context, roomID string, writes []prewrite) error {
	for len(writes) > 0 {
		k, size, records, npos := 0, 0, 0, 0
		for k < len(writes) {
			w := writes[k]
			if k > 0 && (size+w.size > joinChunkBytes || records+w.records > joinChunkWrites) {
				break
			}
			size, records = size+w.size, records+w.records
			if w.pos {
				npos++
			}
			k++
		}
		if err := n.commitChunk(ctx, roomID, npos, writes[:k]); err != nil {
			return err
		}
		writes = writes[k:]
	}
	return nil
}

// commitChunk commits one chunk in one transaction.
func (n *Inbound) commitChunk(ctx context.Context, roomID string, npos int, writes []prewrite) error {
	mu, err := n.LockRoom(ctx, roomID)
	if err != nil {
		return err
	}
	defer mu.Unlock()
	_, err = n.Stream.Commit(npos, func(tx *kv.Txn, first uint64) error {
		// Read in the transaction, so a concurrent commit of the room
		// conflicts with this one.
		if ok, err := tx.Has(core.RoomKey(roomID)); err != nil {
			return err
		} else if ok {
			return fmt.Errorf("room %s appeared while joining it: %w", roomID, core.ErrRoomInUse)
		}
		pos := first
		for _, w := range writes {
			var p uint64
			if w.pos {
				p, pos = pos, pos+1
			}
			if err := w.fn(tx, p); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("join room %s: %w", roomID, err)
	}
	return nil
}

// prewriteJoin writes what a remote join of roomID stores beyond the join's
// own commit (see the top of this file): the snapshots before and after the
// join, the outliers, and the remote members' index entries of before. It
// returns the state the join's commit starts from: before without the
// local users' member events (their entries are the commit's, as what
// sync reads).
func (n *Inbound) prewriteJoin(ctx context.Context, roomID string, version gomatrixserverlib.RoomVersion, before, after *core.State, outliers []gomatrixserverlib.PDU) (*core.State, error) {
	if err := n.dropPendingJoin(ctx, roomID); err != nil {
		return nil, err
	}
	if err := n.prewriteSnapshots(ctx, roomID, before, after); err != nil {
		return nil, err
	}
	byID, err := n.prewriteOutliers(ctx, roomID, version, before, outliers)
	if err != nil {
		return nil, err
	}
	return n.prewriteRemoteMembers(ctx, roomID, before, byID)
}

// prewriteSnapshots is step 1 of prewriteJoin: the state blocks of before
// and after, then their snapshot records, which name the blocks and so come
// last.
func (n *Inbound) prewriteSnapshots(ctx context.Context, roomID string, before, after *core.State) error {
	var writes []prewrite
	seen := map[string]bool{}
	for _, s := range []*core.State{before, after} {
		for _, b := range s.Blocks {
			if b == nil || seen[b.Hash] {
				continue
			}
			seen[b.Hash] = true
			size := 64
			for _, e := range b.Entries {
				size += len(e.Type) + len(e.StateKey) + len(e.EventID) + 16
			}
			writes = append(writes, prewrite{size: size, records: 1, fn: func(tx *kv.Txn, _ uint64) error {
				return core.SetIfAbsent(tx, core.StateBlockKey(b.Hash), b.Encode)
			}})
		}
	}
	writes = append(writes, prewrite{size: 2 * (core.NumSupers + 1) * 64, records: 2 * (core.NumSupers + 1), fn: func(tx *kv.Txn, _ uint64) error {
		for _, s := range []*core.State{before, after} {
			if _, err := n.States.Write(tx, s); err != nil {
				return err
			}
		}
		return nil
	}})
	if err := n.commitChunks(ctx, roomID, writes); err != nil {
		return err
	}
	n.States.MarkWritten(before)
	n.States.MarkWritten(after)
	return nil
}

// prewriteOutliers is step 2 of prewriteJoin: the state and auth chain
// events not stored yet (by an earlier attempt), as outliers with a stream
// position each. It returns the outliers by event ID, for step 3.
func (n *Inbound) prewriteOutliers(ctx context.Context, roomID string, version gomatrixserverlib.RoomVersion, before *core.State, outliers []gomatrixserverlib.PDU) (map[string]gomatrixserverlib.PDU, error) {
	ids := make([]string, len(outliers))
	byID := make(map[string]gomatrixserverlib.PDU, len(outliers))
	for i, ev := range outliers {
		ids[i] = ev.EventID()
		byID[ev.EventID()] = ev
	}
	missing, err := n.unknownEvents(ids, nil)
	if err != nil {
		return nil, err
	}
	var writes []prewrite
	for _, id := range missing {
		ev := byID[id]
		writes = append(writes, prewrite{size: 2*len(id) + len(ev.JSON()) + 256, records: 2, pos: true, fn: func(tx *kv.Txn, pos uint64) error {
			return core.WriteEvent(tx, id, &core.EventRecord{
				RoomID: roomID, Version: string(version), JSON: ev.JSON(),
				StateBefore: before.ID(), StateAfter: before.ID(), Pos: pos,
			})
		}})
	}
	if err := n.commitChunks(ctx, roomID, writes); err != nil {
		return nil, err
	}
	return byID, nil
}

// prewriteRemoteMembers is step 3 of prewriteJoin: the membership index
// entries of before's remote members and their servers' joined counts. It
// returns before without the local users' member events, the state the
// join's commit starts from.
func (n *Inbound) prewriteRemoteMembers(ctx context.Context, roomID string, before *core.State, byID map[string]gomatrixserverlib.PDU) (*core.State, error) {
	pre := map[core.StateKey]string{}
	var remote []core.StateKey
	joined := map[string]uint64{}
	before.Each(func(k core.StateKey, id string) {
		if k.EventType == spec.MRoomMember {
			if n.IsLocalUser(k.StateKey) {
				return
			}
			remote = append(remote, k)
			if m, err := byID[id].Membership(); err == nil && m == spec.Join {
				joined[core.ServerOf(k.StateKey)]++
			}
		}
		pre[k] = id
	})
	slices.SortFunc(remote, func(a, b core.StateKey) int { return strings.Compare(a.StateKey, b.StateKey) })
	if err := n.prewriteMemberEntries(ctx, roomID, remote, pre, byID); err != nil {
		return nil, err
	}
	if err := n.prewriteJoinedServers(ctx, roomID, joined); err != nil {
		return nil, err
	}
	return core.StateFromMap(pre), nil
}

// prewriteMemberEntries writes the membership index entries of the remote
// members (sorted by user ID; pre maps their state keys to event IDs),
// joinChunkMembers per transaction, each chunk listed under tJoinPending so
// that a retry can remove them (dropPendingJoin).
func (n *Inbound) prewriteMemberEntries(ctx context.Context, roomID string, remote []core.StateKey, pre map[core.StateKey]string, byID map[string]gomatrixserverlib.PDU) error {
	for chunk := range slices.Chunk(remote, joinChunkMembers) {
		err := n.commitChunk(ctx, roomID, 0, []prewrite{{fn: func(tx *kv.Txn, _ uint64) error {
			users := make([]string, len(chunk))
			for i, k := range chunk {
				id := pre[k]
				rec, err := core.LoadEventRecord(tx, id)
				if err != nil {
					return err
				}
				m, err := byID[id].Membership()
				if err != nil {
					return err
				}
				if err := tx.SetJSON(core.MembershipKey(k.StateKey, roomID), core.MembershipRecord{Membership: m, EventID: id, Pos: rec.Pos}); err != nil {
					return err
				}
				users[i] = k.StateKey
			}
			return tx.SetJSON(joinPendingKey(roomID, users[0]), users)
		}}})
		if err != nil {
			return err
		}
	}
	return nil
}

// prewriteJoinedServers writes the room's joined-servers counts (server ->
// joined remote members), in server order and joinChunkWrites per
// transaction.
func (n *Inbound) prewriteJoinedServers(ctx context.Context, roomID string, joined map[string]uint64) error {
	servers := make([]string, 0, len(joined))
	for s := range joined {
		servers = append(servers, s)
	}
	slices.Sort(servers)
	for chunk := range slices.Chunk(servers, joinChunkWrites) {
		err := n.commitChunk(ctx, roomID, 0, []prewrite{{fn: func(tx *kv.Txn, _ uint64) error {
			for _, s := range chunk {
				if err := tx.Set(core.RoomServerKey(roomID, s), binary.BigEndian.AppendUint64(nil, joined[s])); err != nil {
					return err
				}
			}
			return nil
		}}})
		if err != nil {
			return err
		}
	}
	return nil
}

// dropPendingJoin removes what an unfinished remote join of roomID (one
// that crashed or failed between its chunks) wrote into the membership and
// joined-servers indexes, so that a new attempt, whose state may differ,
// leaves no entry its own state does not have. Its events and snapshots
// stay: they are the same events, and the new attempt uses them again.
func (n *Inbound) dropPendingJoin(ctx context.Context, roomID string) error {
	for {
		var key []byte
		var users []string
		err := n.DB.View(func(tx *kv.Txn) error {
			return tx.Each(kv.Scan{Prefix: joinPendingPrefix(roomID)}, func(k, v []byte) (bool, error) {
				key = slices.Clone(k)
				return false, json.Unmarshal(v, &users)
			})
		})
		if err != nil {
			return err
		}
		if key == nil {
			break
		}
		err = n.commitChunk(ctx, roomID, 0, []prewrite{{fn: func(tx *kv.Txn, _ uint64) error {
			for _, u := range users {
				if err := tx.Delete(core.MembershipKey(u, roomID)); err != nil {
					return err
				}
			}
			return tx.Delete(key)
		}}})
		if err != nil {
			return err
		}
	}
	for {
		done := false
		err := n.commitChunk(ctx, roomID, 0, []prewrite{{fn: func(tx *kv.Txn, _ uint64) error {
			deleted, err := tx.DeleteFirst(kv.Scan{Prefix: core.RoomServerPrefix(roomID)}, joinChunkWrites)
			done = deleted < joinChunkWrites
			return err
		}}})
		if err != nil || done {
			return err
		}
	}
}

// endPendingJoin is the join's commit dropping the room's pending-join
// lists: its index entries are the room's now.
func endPendingJoin(roomID string) func(tx *kv.Txn) error {
	return func(tx *kv.Txn) error {
		_, err := tx.DeleteFirst(kv.Scan{Prefix: joinPendingPrefix(roomID)}, 0)
		return err
	}
}
