package node

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"sort"

	"github.com/edgenode/edgenode/kv"
	"github.com/matrix-org/gomatrixserverlib"
)

// A room's state is a map (type, state_key) -> event ID, stored as a snapshot
// of up to stateBuckets blocks. Each key always falls in the same bucket, and a
// block is stored under the hash of its content, so a change to one key writes
// one new block and a new snapshot record; every other block is shared with
// the snapshots before it. A room with much membership churn stays small.
const stateBuckets = 256

// StateKey is a (type, state_key) pair.
type StateKey = gomatrixserverlib.StateKeyTuple

type stateEntry struct {
	Type     string
	StateKey string
	EventID  string
}

// stateBlock is immutable once built; States share blocks freely.
type stateBlock struct {
	hash    string
	entries []stateEntry // sorted by (Type, StateKey)
}

// State is an immutable room state. The zero value is the empty state.
type State struct {
	blocks [stateBuckets]*stateBlock
}

func bucketOf(evType, stateKey string) int {
	h := fnv.New32a()
	h.Write([]byte(evType))
	h.Write([]byte{0})
	h.Write([]byte(stateKey))
	return int(h.Sum32() % stateBuckets)
}

// Get returns the event ID for (evType, stateKey).
func (s *State) Get(evType, stateKey string) (string, bool) {
	b := s.blocks[bucketOf(evType, stateKey)]
	if b == nil {
		return "", false
	}
	i := sort.Search(len(b.entries), func(i int) bool {
		e := b.entries[i]
		return e.Type > evType || (e.Type == evType && e.StateKey >= stateKey)
	})
	if i < len(b.entries) && b.entries[i].Type == evType && b.entries[i].StateKey == stateKey {
		return b.entries[i].EventID, true
	}
	return "", false
}

// With returns a copy of s with (evType, stateKey) set to eventID.
func (s *State) With(evType, stateKey, eventID string) *State {
	out := *s
	bi := bucketOf(evType, stateKey)
	var entries []stateEntry
	if old := s.blocks[bi]; old != nil {
		entries = make([]stateEntry, 0, len(old.entries)+1)
		for _, e := range old.entries {
			if e.Type != evType || e.StateKey != stateKey {
				entries = append(entries, e)
			}
		}
	}
	entries = append(entries, stateEntry{evType, stateKey, eventID})
	out.blocks[bi] = newStateBlock(entries)
	return &out
}

// Len is the number of state entries.
func (s *State) Len() int {
	n := 0
	for _, b := range s.blocks {
		if b != nil {
			n += len(b.entries)
		}
	}
	return n
}

// Each calls fn for every entry, in bucket order.
func (s *State) Each(fn func(k StateKey, eventID string)) {
	for _, b := range s.blocks {
		if b == nil {
			continue
		}
		for _, e := range b.entries {
			fn(StateKey{EventType: e.Type, StateKey: e.StateKey}, e.EventID)
		}
	}
}

// EventIDs lists every event ID in the state.
func (s *State) EventIDs() []string {
	ids := make([]string, 0, s.Len())
	s.Each(func(_ StateKey, id string) { ids = append(ids, id) })
	return ids
}

// stateFromMap builds a State from a map.
func stateFromMap(m map[StateKey]string) *State {
	var per [stateBuckets][]stateEntry
	for k, id := range m {
		bi := bucketOf(k.EventType, k.StateKey)
		per[bi] = append(per[bi], stateEntry{k.EventType, k.StateKey, id})
	}
	s := &State{}
	for i, entries := range per {
		if len(entries) > 0 {
			s.blocks[i] = newStateBlock(entries)
		}
	}
	return s
}

func newStateBlock(entries []stateEntry) *stateBlock {
	sort.Slice(entries, func(i, j int) bool {
		if entries[i].Type != entries[j].Type {
			return entries[i].Type < entries[j].Type
		}
		return entries[i].StateKey < entries[j].StateKey
	})
	h := sha256.New()
	for _, e := range entries {
		fmt.Fprintf(h, "%q %q %q\n", e.Type, e.StateKey, e.EventID)
	}
	return &stateBlock{hash: hex.EncodeToString(h.Sum(nil)[:16]), entries: entries}
}

// ID is the snapshot ID: a hash over the block hashes, so equal states have
// equal IDs. The empty state's ID is "".
func (s *State) ID() string {
	h := sha256.New()
	empty := true
	for i, b := range s.blocks {
		if b != nil {
			empty = false
			fmt.Fprintf(h, "%d:%s\n", i, b.hash)
		}
	}
	if empty {
		return ""
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// snapshotRecord is what is stored for a snapshot: bucket -> block hash.
type snapshotRecord struct {
	Blocks map[int]string `json:"b"`
}

// stateStore reads and writes snapshots, caching decoded blocks (immutable,
// so safe to share) in a bounded LRU.
type stateStore struct {
	blocks *lru[string, *stateBlock]
}

func newStateStore() *stateStore {
	return &stateStore{blocks: newLRU[string, *stateBlock](4096)}
}

// write stores s (only the blocks and snapshot not already stored) in tx and
// returns its ID.
func (ss *stateStore) write(tx *kv.Txn, s *State) (string, error) {
	id := s.ID()
	if id == "" {
		return "", nil
	}
	if ok, err := tx.Has(snapshotKey(id)); err != nil || ok {
		return id, err
	}
	rec := snapshotRecord{Blocks: map[int]string{}}
	for i, b := range s.blocks {
		if b == nil {
			continue
		}
		rec.Blocks[i] = b.hash
		if _, cached := ss.blocks.get(b.hash); cached {
			continue // a cached block was read from or written to disk already
		}
		ok, err := tx.Has(stateBlockKey(b.hash))
		if err != nil {
			return "", err
		}
		if !ok {
			rows := make([][3]string, len(b.entries))
			for j, e := range b.entries {
				rows[j] = [3]string{e.Type, e.StateKey, e.EventID}
			}
			if err := tx.SetJSON(stateBlockKey(b.hash), rows); err != nil {
				return "", err
			}
		}
	}
	if err := tx.SetJSON(snapshotKey(id), rec); err != nil {
		return "", err
	}
	return id, nil
}

// markWritten caches s's blocks after the transaction that wrote them commits.
func (ss *stateStore) markWritten(s *State) {
	for _, b := range s.blocks {
		if b != nil {
			ss.blocks.put(b.hash, b)
		}
	}
}

// read loads the snapshot id.
func (ss *stateStore) read(tx *kv.Txn, id string) (*State, error) {
	s := &State{}
	if id == "" {
		return s, nil
	}
	var rec snapshotRecord
	if err := tx.GetJSON(snapshotKey(id), &rec); err != nil {
		return nil, fmt.Errorf("load snapshot %s: %w", id, err)
	}
	for i, hash := range rec.Blocks {
		if i < 0 || i >= stateBuckets {
			return nil, fmt.Errorf("snapshot %s: bad bucket %d", id, i)
		}
		if b, ok := ss.blocks.get(hash); ok {
			s.blocks[i] = b
			continue
		}
		raw, err := tx.Get(stateBlockKey(hash))
		if err != nil {
			return nil, fmt.Errorf("load state block %s: %w", hash, err)
		}
		var rows [][3]string
		if err := json.Unmarshal(raw, &rows); err != nil {
			return nil, fmt.Errorf("decode state block %s: %w", hash, err)
		}
		b := &stateBlock{hash: hash, entries: make([]stateEntry, len(rows))}
		for j, r := range rows {
			b.entries[j] = stateEntry{r[0], r[1], r[2]}
		}
		ss.blocks.put(hash, b)
		s.blocks[i] = b
	}
	return s, nil
}
