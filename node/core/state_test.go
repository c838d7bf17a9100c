package core

import (
	"context"
	"fmt"
	"maps"
	"testing"

	"github.com/edgenode/edgenode/kv"
	"github.com/matrix-org/gomatrixserverlib/spec"
)

func TestStateWithGet(t *testing.T) {
	var empty State
	if empty.ID() != "" || empty.Len() != 0 {
		t.Fatalf("empty state: ID %q, Len %d", empty.ID(), empty.Len())
	}
	if _, ok := empty.Get(spec.MRoomCreate, ""); ok {
		t.Fatal("empty state has a create event")
	}

	s1 := empty.With(spec.MRoomCreate, "", "$create")
	s2 := s1.With(spec.MRoomMember, "@a:x", "$a1")
	s3 := s2.With(spec.MRoomMember, "@a:x", "$a2") // replaces
	tests := []struct {
		name     string
		s        *State
		evType   string
		stateKey string
		want     string // "" when absent
		wantLen  int
	}{
		{"empty is untouched by With", &empty, spec.MRoomCreate, "", "", 0},
		{"one key", s1, spec.MRoomCreate, "", "$create", 1},
		{"older state is untouched", s1, spec.MRoomMember, "@a:x", "", 1},
		{"two keys", s2, spec.MRoomMember, "@a:x", "$a1", 2},
		{"replace", s3, spec.MRoomMember, "@a:x", "$a2", 2},
		{"replace keeps others", s3, spec.MRoomCreate, "", "$create", 2},
		{"state key is part of the key", s3, spec.MRoomMember, "@b:x", "", 2},
		{"type is part of the key", s3, "m.room.memberx", "@a:x", "", 2},
		{"empty state key is not the missing key", s3, spec.MRoomMember, "", "", 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := tc.s.Get(tc.evType, tc.stateKey)
			if got != tc.want || ok != (tc.want != "") {
				t.Errorf("Get(%s, %s) = %q, %v; want %q", tc.evType, tc.stateKey, got, ok, tc.want)
			}
			if tc.s.Len() != tc.wantLen {
				t.Errorf("Len %d, want %d", tc.s.Len(), tc.wantLen)
			}
		})
	}
}

func TestStateID(t *testing.T) {
	m := map[StateKey]string{}
	for i := range 600 { // more keys than buckets: blocks hold several
		m[StateKey{EventType: spec.MRoomMember, StateKey: fmt.Sprintf("@u%d:x", i)}] = fmt.Sprintf("$m%d", i)
	}
	m[StateKey{EventType: spec.MRoomCreate}] = "$create"
	m[StateKey{EventType: "x.odd", StateKey: "a\x00b \"c\"\n"}] = "$odd"

	fromMap := StateFromMap(m)
	// The same state built key by key, in another order.
	var built State
	s := &built
	keys := make([]StateKey, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	for i := len(keys) - 1; i >= 0; i-- {
		s = s.With(keys[i].EventType, keys[i].StateKey, m[keys[i]])
	}
	if fromMap.ID() == "" || fromMap.ID() != s.ID() {
		t.Fatalf("equal states, different IDs: %q, %q", fromMap.ID(), s.ID())
	}
	if !maps.Equal(stateMap(fromMap), m) || !maps.Equal(stateMap(s), m) {
		t.Fatal("state does not hold what it was built from")
	}
	if got, _ := s.Get("x.odd", "a\x00b \"c\"\n"); got != "$odd" {
		t.Fatalf("odd state key: %q", got)
	}

	// One different event ID, one more key, one key fewer: different IDs.
	changed := s.With(spec.MRoomMember, "@u7:x", "$other")
	more := s.With(spec.MRoomMember, "@new:x", "$new")
	delete(m, StateKey{EventType: spec.MRoomMember, StateKey: "@u7:x"})
	fewer := StateFromMap(m)
	ids := map[string]bool{s.ID(): true, changed.ID(): true, more.ID(): true, fewer.ID(): true}
	if len(ids) != 4 {
		t.Fatalf("different states share an ID: %v", ids)
	}
	// Putting the old event back gives the old ID.
	if back := changed.With(spec.MRoomMember, "@u7:x", "$m7"); back.ID() != s.ID() {
		t.Fatal("state changed and changed back has a new ID")
	}
}

func TestDiffState(t *testing.T) {
	base := StateFromMap(map[StateKey]string{
		{EventType: spec.MRoomCreate}:                   "$create",
		{EventType: spec.MRoomMember, StateKey: "@a:x"}: "$a1",
		{EventType: spec.MRoomMember, StateKey: "@b:x"}: "$b1",
		{EventType: spec.MRoomTopic}:                    "$t1",
	})
	type change struct{ old, new string }
	tests := []struct {
		name string
		to   *State
		want map[StateKey]change
	}{
		{"same", base, map[StateKey]change{}},
		{"changed", base.With(spec.MRoomMember, "@a:x", "$a2"),
			map[StateKey]change{{EventType: spec.MRoomMember, StateKey: "@a:x"}: {"$a1", "$a2"}}},
		{"added", base.With(spec.MRoomMember, "@c:x", "$c1"),
			map[StateKey]change{{EventType: spec.MRoomMember, StateKey: "@c:x"}: {"", "$c1"}}},
		{"removed", StateFromMap(map[StateKey]string{
			{EventType: spec.MRoomCreate}:                   "$create",
			{EventType: spec.MRoomMember, StateKey: "@a:x"}: "$a1",
			{EventType: spec.MRoomMember, StateKey: "@b:x"}: "$b1",
		}), map[StateKey]change{{EventType: spec.MRoomTopic}: {"$t1", ""}}},
		{"several", base.With(spec.MRoomTopic, "", "$t2").With(spec.MRoomMember, "@b:x", "$b2").With("x.new", "k", "$n"),
			map[StateKey]change{
				{EventType: spec.MRoomTopic}:                    {"$t1", "$t2"},
				{EventType: spec.MRoomMember, StateKey: "@b:x"}: {"$b1", "$b2"},
				{EventType: "x.new", StateKey: "k"}:             {"", "$n"},
			}},
		{"from empty", &State{}, map[StateKey]change{
			{EventType: spec.MRoomCreate}:                   {"$create", ""},
			{EventType: spec.MRoomMember, StateKey: "@a:x"}: {"$a1", ""},
			{EventType: spec.MRoomMember, StateKey: "@b:x"}: {"$b1", ""},
			{EventType: spec.MRoomTopic}:                    {"$t1", ""},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := map[StateKey]change{}
			DiffState(base, tc.to, func(k StateKey, o, n string) {
				if _, dup := got[k]; dup {
					t.Errorf("key %v reported twice", k)
				}
				got[k] = change{o, n}
			})
			if !maps.Equal(got, tc.want) {
				t.Errorf("diff %v, want %v", got, tc.want)
			}
		})
	}
}

// TestStateStoreRoundTrip writes snapshots and reads them back with a cold
// cache; writing a state again, or a state that shares blocks, stores only
// what is new.
func TestStateStoreRoundTrip(t *testing.T) {
	n := newTestNodeWith(t, func(c *Config) { c.NoSyncWrites = true })
	m := map[StateKey]string{}
	for i := range 100 {
		m[StateKey{EventType: spec.MRoomMember, StateKey: fmt.Sprintf("@u%d:x", i)}] = fmt.Sprintf("$m%d", i)
	}
	s := StateFromMap(m)
	write := func(st *State) {
		t.Helper()
		err := n.DB.Update(func(tx *kv.Txn) error {
			_, err := n.States.Write(tx, st)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		n.States.MarkWritten(st)
	}
	write(s)
	blocks, snaps := countKeys(t, n, tStateBlock), countKeys(t, n, tSnapshot)
	if snaps != 1 || blocks == 0 || blocks > 100 {
		t.Fatalf("one snapshot of 100 keys: %d snapshots, %d blocks", snaps, blocks)
	}
	write(s)
	if countKeys(t, n, tStateBlock) != blocks || countKeys(t, n, tSnapshot) != 1 {
		t.Fatal("writing a state again stored something")
	}
	write(s.With(spec.MRoomMember, "@u1:x", "$changed"))
	if got := countKeys(t, n, tStateBlock); got != blocks+1 {
		t.Fatalf("one key changed: %d new blocks, want 1", got-blocks)
	}

	n.States = newStateStore(splitCacheBudget(n.Config().CacheBytes).states) // cold cache: blocks come from disk
	var got *State
	if err := n.DB.View(func(tx *kv.Txn) (err error) { got, err = n.States.Read(tx, s.ID()); return err }); err != nil {
		t.Fatal(err)
	}
	if got.ID() != s.ID() || !maps.Equal(stateMap(got), m) {
		t.Fatal("snapshot read back differs")
	}
}

// TestStateSnapshotDedup makes 1000 membership changes in a room: each
// writes one new block (the changed key's bucket) and shares the rest, so the
// blocks stored grow with the changes, not with changes x buckets.
func TestStateSnapshotDedup(t *testing.T) {
	t.Parallel()
	const users, rounds = 200, 5 // join, leave, join, leave, join: 1000 changes
	ctx := context.Background()
	n := newTestNodeWith(t, func(c *Config) { c.NoSyncWrites = true })
	alice := session(n, "alice")
	roomID, err := n.CreateRoom(ctx, CreateRoomRequest{Creator: alice.UserID, Preset: PresetPublicChat})
	if err != nil {
		t.Fatal(err)
	}
	blocksBefore, snapsBefore := countKeys(t, n, tStateBlock), countKeys(t, n, tSnapshot)
	changes := 0
	for r := range rounds {
		m := spec.Join
		if r%2 == 1 {
			m = spec.Leave
		}
		// 20 changes a batch (one transaction) keeps the test quick; each
		// event still gets its own state before and after.
		var reqs []SendRequest
		for u := range users {
			uid := session(n, fmt.Sprintf("u%03d", u)).UserID
			reqs = append(reqs, SendRequest{Sender: uid, RoomID: roomID, Type: spec.MRoomMember, StateKey: &uid,
				Content: []byte(`{"membership":"` + m + `"}`)})
			changes++
		}
		sendBatches(t, n, roomID, 20, reqs)
	}
	blocks := countKeys(t, n, tStateBlock) - blocksBefore
	snaps := countKeys(t, n, tSnapshot) - snapsBefore
	state := readSnapshot(t, n, roomHead(t, n, roomID).State)
	buckets := 0
	for _, b := range state.Blocks {
		if b != nil {
			buckets++
		}
	}
	tableBytes := func(table string) int {
		total := 0
		_ = n.DB.View(func(tx *kv.Txn) error {
			return tx.Each(kv.Scan{Prefix: kv.Key(table)}, func(k, v []byte) (bool, error) {
				total += len(k) + len(v)
				return true, nil
			})
		})
		return total
	}
	snapBytes, superBytes, blockBytes := tableBytes(tSnapshot), tableBytes(tStateSuper), tableBytes(tStateBlock)
	t.Logf("%d changes: %d new blocks, %d new snapshots; bytes: snapshots %d, superblocks %d, blocks %d; %d of %d buckets in use",
		changes, blocks, snaps, snapBytes, superBytes, blockBytes, buckets, stateBuckets)
	// A change costs one snapshot record and one superblock of 256 bytes each
	// (plus keys), not a record listing every bucket.
	if perChange := (snapBytes + superBytes) / changes; perChange > 700 {
		t.Errorf("snapshot and superblock records cost %d bytes a change, want <= 700", perChange)
	}
	// Each change makes exactly one block no state had before.
	if blocks < changes || blocks > changes+changes/20 {
		t.Errorf("%d changes stored %d blocks; want about one per change (copying every bucket would be about %d)",
			changes, blocks, changes*buckets)
	}
	if snaps < changes || snaps > changes+changes/20 {
		t.Errorf("%d changes stored %d snapshots, want about one per change", changes, snaps)
	}
	if state.Len() != users+6 { // the users, alice, and 5 other initial state events
		t.Errorf("final state has %d entries", state.Len())
	}
	joined, err := n.JoinedRooms(ctx, session(n, "u007").UserID)
	if err != nil || len(joined) != 1 || joined[0] != roomID {
		t.Errorf("membership index after the churn: %v, %v", joined, err)
	}
}
