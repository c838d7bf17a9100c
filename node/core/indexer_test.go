package core

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"testing"

	"github.com/edgenode/edgenode/kv"
	"github.com/matrix-org/gomatrixserverlib/spec"
)

// probeIndexer is a concern plugged in by registering: it reserves two
// stream positions per batch, writes a key per accepted event and per
// reserved position, and records what its after-commit action could read.
type probeIndexer struct {
	n    *Node
	fail error // returned by Index when set

	reserved [][2]uint64 // each batch's reserved range
	events   []uint64    // the positions of the events it was told of
	joined   []string    // users whose membership became join
	durable  []bool      // per after: the batch's keys were readable then
}

func probeKey(pos uint64) []byte { return kv.Key("probe", pos) }

func (p *probeIndexer) Prepare(*RoomCommit) (IndexPlan, error) {
	return IndexPlan{Positions: 2}, nil
}

func (p *probeIndexer) Index(tx *kv.Txn, c *RoomCommit, plan IndexPlan) (func(), error) {
	if p.fail != nil {
		return nil, p.fail
	}
	for _, e := range c.Events {
		p.events = append(p.events, e.Pos)
		if err := tx.Set(probeKey(e.Pos), []byte(e.PDU.EventID())); err != nil {
			return nil, err
		}
	}
	for _, ch := range c.MemberChanges {
		if ch.Membership == spec.Join {
			p.joined = append(p.joined, ch.UserID)
		}
	}
	p.reserved = append(p.reserved, [2]uint64{plan.First, plan.First + uint64(plan.Positions) - 1})
	for pos := plan.First; pos < plan.First+uint64(plan.Positions); pos++ {
		if err := tx.Set(probeKey(pos), binary.BigEndian.AppendUint64(nil, pos)); err != nil {
			return nil, err
		}
	}
	last := plan.First + uint64(plan.Positions) - 1
	return func() {
		err := p.n.DB.View(func(tx *kv.Txn) error {
			_, err := tx.Get(probeKey(last))
			return err
		})
		p.durable = append(p.durable, err == nil && p.n.StreamPosition() >= last)
	}, nil
}

// TestIndexerRegistered checks that an indexer added to the registry is
// told of each batch's accepted events and member changes inside the
// commit, gets stream positions of its own that nothing else takes, runs
// its action once the commit is durable, and that its failure fails the
// whole commit.
func TestIndexerRegistered(t *testing.T) {
	ctx := context.Background()
	n := newTestNode(t)
	probe := &probeIndexer{n: n}
	n.indexers = append(n.indexers, probe)
	alice := session(n, "alice")
	roomID, err := n.CreateRoom(ctx, CreateRoomRequest{Creator: alice.UserID})
	if err != nil {
		t.Fatal(err)
	}
	id := send(t, n, alice, roomID, "hello")
	ev, err := n.Event(ctx, alice.UserID, id)
	if err != nil {
		t.Fatal(err)
	}
	if len(probe.reserved) < 2 || len(probe.durable) != len(probe.reserved) {
		t.Fatalf("%d batches indexed, %d actions after the commit; want 2 or more, one each", len(probe.reserved), len(probe.durable))
	}
	for i, ok := range probe.durable {
		if !ok {
			t.Errorf("batch %d: the action ran before its writes were durable", i)
		}
	}
	if got := probe.events[len(probe.events)-1]; got != ev.Pos {
		t.Errorf("indexer told of position %d for the message, stored at %d", got, ev.Pos)
	}
	if len(probe.joined) == 0 || probe.joined[0] != alice.UserID {
		t.Errorf("member changes: joined %v, want %s first", probe.joined, alice.UserID)
	}
	// Reserved positions come after the batch's events and are nobody
	// else's: the next batch's event is numbered after them.
	last := probe.reserved[len(probe.reserved)-1]
	if last[0] != ev.Pos+1 {
		t.Errorf("reserved %v, want from %d (after the message)", last, ev.Pos+1)
	}
	id2 := send(t, n, alice, roomID, "again")
	ev2, err := n.Event(ctx, alice.UserID, id2)
	if err != nil {
		t.Fatal(err)
	}
	if ev2.Pos <= last[1] {
		t.Errorf("next message at %d, inside the reserved %v", ev2.Pos, last)
	}

	// A failing indexer fails the commit: nothing of the batch is stored.
	probe.fail = errors.New("probe refuses")
	before, entries := n.StreamPosition(), timelineEntries(t, n, roomID)
	c, _ := json.Marshal(map[string]string{"msgtype": "m.text", "body": "never"})
	if _, err := n.SendEvent(ctx, SendRequest{Sender: alice.UserID, DeviceID: alice.DeviceID, RoomID: roomID, Type: "m.room.message", Content: c}); err == nil {
		t.Fatal("send succeeded though an indexer failed")
	}
	if got := n.StreamPosition(); got != before {
		t.Errorf("stream moved from %d to %d on a failed commit", before, got)
	}
	if got := timelineEntries(t, n, roomID); got != entries {
		t.Errorf("%d timeline entries after a failed commit, %d before", got, entries)
	}
}

// timelineEntries counts the room's timeline entries.
func timelineEntries(t *testing.T, n *Node, roomID string) int {
	t.Helper()
	count := 0
	err := n.DB.View(func(tx *kv.Txn) error {
		return tx.Each(kv.Scan{Prefix: RoomStreamPrefix(roomID), KeysOnly: true}, func(_, _ []byte) (bool, error) {
			count++
			return true, nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return count
}
