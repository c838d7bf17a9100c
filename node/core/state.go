package core

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

// A room's state is a map (type, state_key) -> event ID, stored as a small
// tree: each key always falls in the same one of stateBuckets buckets; a
// bucket's entries are a block, and every superBucket consecutive blocks are
// a superblock; a snapshot names its superblocks. Blocks and superblocks are
// stored under the hash of their content, so a change to one key writes one
// block, one superblock (256 bytes) and one snapshot record (256 bytes), and
// shares everything else with the snapshots before it. A room with much
// membership churn stays small.
const (
	stateBuckets = 256
	superBucket  = 16
	NumSupers    = stateBuckets / superBucket
	hashLen      = 16
)

// StateKey is a (type, state_key) pair.
type StateKey = gomatrixserverlib.StateKeyTuple

type stateEntry struct {
	Type     string
	StateKey string
	EventID  string
}

// stateBlock is immutable once built; States share blocks freely.
type stateBlock struct {
	Hash    string       // raw hash bytes
	Entries []stateEntry // sorted by (Type, StateKey)
}

// State is an immutable room state. The zero value is the empty state.
type State struct {
	Blocks [stateBuckets]*stateBlock
	// supers holds each superblock's hash ("" when all its blocks are
	// empty); id is the snapshot ID. Both are computed when the State is
	// made, so a State can be shared between goroutines without locks.
	supers [NumSupers]string
	id     string
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
	b := s.Blocks[bucketOf(evType, stateKey)]
	if b == nil {
		return "", false
	}
	i := sort.Search(len(b.Entries), func(i int) bool {
		e := b.Entries[i]
		return e.Type > evType || (e.Type == evType && e.StateKey >= stateKey)
	})
	if i < len(b.Entries) && b.Entries[i].Type == evType && b.Entries[i].StateKey == stateKey {
		return b.Entries[i].EventID, true
	}
	return "", false
}

// With returns a copy of s with (evType, stateKey) set to eventID.
func (s *State) With(evType, stateKey, eventID string) *State {
	out := *s
	bi := bucketOf(evType, stateKey)
	var entries []stateEntry
	if old := s.Blocks[bi]; old != nil {
		entries = make([]stateEntry, 0, len(old.Entries)+1)
		for _, e := range old.Entries {
			if e.Type != evType || e.StateKey != stateKey {
				entries = append(entries, e)
			}
		}
	}
	entries = append(entries, stateEntry{evType, stateKey, eventID})
	out.Blocks[bi] = newStateBlock(entries)
	out.supers[bi/superBucket] = out.superHash(bi / superBucket)
	out.id = out.snapshotHash()
	return &out
}

// Len is the number of state entries.
func (s *State) Len() int {
	n := 0
	for _, b := range s.Blocks {
		if b != nil {
			n += len(b.Entries)
		}
	}
	return n
}

// Each calls fn for every entry, in bucket order.
func (s *State) Each(fn func(k StateKey, eventID string)) {
	for _, b := range s.Blocks {
		if b == nil {
			continue
		}
		for _, e := range b.Entries {
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

// StateFromMap builds a State from a map.
func StateFromMap(m map[StateKey]string) *State {
	var per [stateBuckets][]stateEntry
	for k, id := range m {
		bi := bucketOf(k.EventType, k.StateKey)
		per[bi] = append(per[bi], stateEntry{k.EventType, k.StateKey, id})
	}
	s := &State{}
	for i, entries := range per {
		if len(entries) > 0 {
			s.Blocks[i] = newStateBlock(entries)
		}
	}
	s.rehash()
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
	return &stateBlock{Hash: string(h.Sum(nil)[:hashLen]), Entries: entries}
}

// rehash computes every superblock hash and the ID.
func (s *State) rehash() {
	for i := range s.supers {
		s.supers[i] = s.superHash(i)
	}
	s.id = s.snapshotHash()
}

// superHash is the hash of superblock i: of its blocks' hashes.
func (s *State) superHash(i int) string {
	h := sha256.New()
	empty := true
	for _, b := range s.Blocks[i*superBucket : (i+1)*superBucket] {
		if b == nil {
			h.Write(make([]byte, hashLen))
			continue
		}
		empty = false
		h.Write([]byte(b.Hash))
	}
	if empty {
		return ""
	}
	return string(h.Sum(nil)[:hashLen])
}

func (s *State) snapshotHash() string {
	h := sha256.New()
	empty := true
	for _, sh := range s.supers {
		if sh == "" {
			h.Write(make([]byte, hashLen))
			continue
		}
		empty = false
		h.Write([]byte(sh))
	}
	if empty {
		return ""
	}
	return hex.EncodeToString(h.Sum(nil)[:hashLen])
}

// ID is the snapshot ID: equal states have equal IDs. The empty state's ID
// is "".
func (s *State) ID() string { return s.id }

// stateStore reads and writes snapshots. Blocks and decoded snapshots are
// immutable, so they are cached and shared, in bounded LRUs.
type stateStore struct {
	blocks *lru[string, *stateBlock]
	snaps  *lru[string, *State]
}

// newStateStore makes a store whose caches hold at most maxBytes (as
// caches.go estimates them), half in blocks and half in snapshots.
func newStateStore(maxBytes int) *stateStore {
	return &stateStore{
		blocks: newSizedLRU[string](maxCachedStateBlocks, maxBytes/2, stateBlockSize),
		snaps:  newSizedLRU[string](maxCachedSnapshots, maxBytes/2, stateSnapshotSize),
	}
}

// packHashes lays out hashes ("" as zeros) as one record.
func packHashes(hs []string) []byte {
	out := make([]byte, 0, len(hs)*hashLen)
	for _, h := range hs {
		if h == "" {
			out = append(out, make([]byte, hashLen)...)
		} else {
			out = append(out, h...)
		}
	}
	return out
}

// unpackHashes reverses packHashes.
func unpackHashes(b []byte, n int) ([]string, error) {
	if len(b) != n*hashLen {
		return nil, fmt.Errorf("state record of %d bytes, want %d", len(b), n*hashLen)
	}
	zero := string(make([]byte, hashLen))
	out := make([]string, n)
	for i := range out {
		if h := string(b[i*hashLen : (i+1)*hashLen]); h != zero {
			out[i] = h
		}
	}
	return out, nil
}

// SetIfAbsent writes a content-addressed record unless it is stored already.
func SetIfAbsent(tx *kv.Txn, key []byte, value func() ([]byte, error)) error {
	if ok, err := tx.Has(key); err != nil || ok {
		return err
	}
	v, err := value()
	if err != nil {
		return err
	}
	return tx.Set(key, v)
}

// Write stores s (only the parts not already stored) in tx and returns its ID.
func (ss *stateStore) Write(tx *kv.Txn, s *State) (string, error) {
	if s.id == "" {
		return "", nil
	}
	if ok, err := tx.Has(snapshotKey(s.id)); err != nil || ok {
		return s.id, err
	}
	for i, sh := range s.supers {
		if sh == "" {
			continue
		}
		blocks := s.Blocks[i*superBucket : (i+1)*superBucket]
		err := SetIfAbsent(tx, stateSuperKey(sh), func() ([]byte, error) {
			hs := make([]string, superBucket)
			for j, b := range blocks {
				if b != nil {
					hs[j] = b.Hash
				}
			}
			return packHashes(hs), nil
		})
		if err != nil {
			return "", err
		}
		for _, b := range blocks {
			if b == nil {
				continue
			}
			if _, cached := ss.blocks.Get(b.Hash); cached {
				continue // a cached block was read from or written to disk already
			}
			err := SetIfAbsent(tx, StateBlockKey(b.Hash), b.Encode)
			if err != nil {
				return "", err
			}
		}
	}
	if err := tx.Set(snapshotKey(s.id), packHashes(s.supers[:])); err != nil {
		return "", err
	}
	return s.id, nil
}

// Encode is the block's stored form.
func (b *stateBlock) Encode() ([]byte, error) {
	rows := make([][3]string, len(b.Entries))
	for j, e := range b.Entries {
		rows[j] = [3]string{e.Type, e.StateKey, e.EventID}
	}
	return json.Marshal(rows)
}

// MarkWritten caches s and its blocks after the transaction that wrote them
// commits.
func (ss *stateStore) MarkWritten(s *State) {
	for _, b := range s.Blocks {
		if b != nil {
			ss.blocks.Put(b.Hash, b)
		}
	}
	if s.id != "" {
		ss.snaps.Put(s.id, s)
	}
}

// Read loads the snapshot id.
func (ss *stateStore) Read(tx *kv.Txn, id string) (*State, error) {
	if id == "" {
		return &State{}, nil
	}
	if s, ok := ss.snaps.Get(id); ok {
		return s, nil
	}
	raw, err := tx.Get(snapshotKey(id))
	if err != nil {
		return nil, fmt.Errorf("load snapshot %s: %w", id, err)
	}
	supers, err := unpackHashes(raw, NumSupers)
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", id, err)
	}
	s := &State{id: id}
	copy(s.supers[:], supers)
	for i, sh := range supers {
		if sh == "" {
			continue
		}
		raw, err := tx.Get(stateSuperKey(sh))
		if err != nil {
			return nil, fmt.Errorf("load state superblock: %w", err)
		}
		hs, err := unpackHashes(raw, superBucket)
		if err != nil {
			return nil, fmt.Errorf("state superblock: %w", err)
		}
		for j, hash := range hs {
			if hash == "" {
				continue
			}
			b, err := ss.readBlock(tx, hash)
			if err != nil {
				return nil, err
			}
			s.Blocks[i*superBucket+j] = b
		}
	}
	ss.snaps.Put(id, s)
	return s, nil
}

func (ss *stateStore) readBlock(tx *kv.Txn, hash string) (*stateBlock, error) {
	if b, ok := ss.blocks.Get(hash); ok {
		return b, nil
	}
	raw, err := tx.Get(StateBlockKey(hash))
	if err != nil {
		return nil, fmt.Errorf("load state block: %w", err)
	}
	var rows [][3]string
	if err := json.Unmarshal(raw, &rows); err != nil {
		return nil, fmt.Errorf("decode state block: %w", err)
	}
	b := &stateBlock{Hash: hash, Entries: make([]stateEntry, len(rows))}
	for j, r := range rows {
		b.Entries[j] = stateEntry{r[0], r[1], r[2]}
	}
	ss.blocks.Put(hash, b)
	return b, nil
}
