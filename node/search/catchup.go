package search

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/edgenode/edgenode/kv"
	"github.com/edgenode/edgenode/node/core"
)

// Catching up: the room events a node stored before it had a search index
// (a node upgraded in place) are indexed once, when it opens. The walk goes
// through every room's timeline in stream order, catchUpEvents events per
// transaction, each transaction also recording how far it got in the room
// (progressKey), so a crash resumes where the last one ended. When every
// room is done, builtKey marks the index complete and the walk never runs
// again: from then on the commit's Indexer keeps it.
//
// Events committed while the walk runs are indexed by the Indexer as well;
// writing a posting again is harmless (same key, same value). Each
// transaction runs under the room's lock, so a redaction cannot commit
// between the walk reading an event and writing its postings (which would
// put back the words the redaction deleted).

// TableCatchUp holds the catch-up's state: "built" once the index covers
// every room, and ("room", room ID) -> the stream position the walk has
// indexed up to in that room while it runs.
const TableCatchUp = "searchmeta"

// A transaction of the walk reads at most catchUpEvents timeline events
// and writes at most catchUpPostings postings, or one event's more: an
// event has up to MaxTokensPerEvent, and the phone profile's transactions
// take a few thousand writes (Badger's limit is 15% of its 2 MiB memtable).
const (
	catchUpEvents   = 256
	catchUpPostings = 1024
)

func builtKey() []byte                 { return kv.Key(TableCatchUp, "built") }
func progressKey(roomID string) []byte { return kv.Key(TableCatchUp, "room", roomID) }
func progressPrefix() []byte           { return kv.Key(TableCatchUp, "room") }
func encodeProgress(pos uint64) []byte { return binary.BigEndian.AppendUint64(nil, pos) }
func decodeProgress(b []byte) (uint64, error) {
	if len(b) != 8 {
		return 0, fmt.Errorf("search: malformed catch-up progress %x", b)
	}
	return binary.BigEndian.Uint64(b), nil
}

// CatchUp indexes, once, the room events stored before the node had a
// search index, resuming a walk a crash interrupted. node.New runs it
// before the node serves anyone. (A function rather than a method, so that
// node.Node, which embeds Search, does not get a CatchUp method.)
func CatchUp(ctx context.Context, s *Search) error {
	if err := s.catchUp(ctx, -1); err != nil {
		return fmt.Errorf("search: catch up: %w", err)
	}
	return nil
}

// catchUp runs the walk, stopping after maxTxns transactions when that is
// not negative (a test's crash).
func (s *Search) catchUp(ctx context.Context, maxTxns int) error {
	var built bool
	var rooms []string
	err := s.DB.View(func(tx *kv.Txn) error {
		var err error
		if built, err = tx.Has(builtKey()); err != nil || built {
			return err
		}
		rooms, err = core.RoomIDs(tx)
		return err
	})
	if err != nil {
		return err
	}
	if built {
		return s.dropProgress() // what a crash in finishCatchUp left (usually nothing: one seek)
	}
	events := 0
	for _, roomID := range rooms {
		n, done, err := s.catchUpRoom(ctx, roomID, &maxTxns)
		events += n
		if err != nil {
			return err
		}
		if !done {
			return nil // the test's crash
		}
	}
	if err := s.finishCatchUp(); err != nil {
		return err
	}
	if events > 0 {
		s.Logger().Info("search: indexed the events stored before the index", "rooms", len(rooms), "events", events)
	}
	return nil
}

// catchUpRoom indexes roomID's timeline from where the walk left it. It
// returns the events indexed, and done false when maxTxns ran out first.
func (s *Search) catchUpRoom(ctx context.Context, roomID string, maxTxns *int) (int, bool, error) {
	total := 0
	for {
		if *maxTxns == 0 {
			return total, false, nil
		}
		if err := ctx.Err(); err != nil {
			return total, false, err
		}
		n, more, err := s.catchUpChunk(ctx, roomID)
		if err != nil {
			return total, false, fmt.Errorf("%s: %w", roomID, err)
		}
		total += n
		if *maxTxns > 0 {
			*maxTxns--
		}
		if !more {
			return total, true, nil
		}
	}
}

// catchUpChunk indexes the next s.catchUpEvents events of roomID's timeline
// in one transaction, under the room's lock, and records how far it got. It
// reports whether the timeline may have more.
func (s *Search) catchUpChunk(ctx context.Context, roomID string) (indexed int, more bool, err error) {
	mu, err := s.LockRoom(ctx, roomID)
	if err != nil {
		return 0, false, err
	}
	defer mu.Unlock()
	err = s.DB.Update(func(tx *kv.Txn) error {
		var after uint64
		switch b, err := tx.Get(progressKey(roomID)); {
		case errors.Is(err, kv.ErrNotFound):
		case err != nil:
			return err
		default:
			if after, err = decodeProgress(b); err != nil {
				return err
			}
		}
		type entry struct {
			pos     uint64
			eventID string
		}
		var entries []entry
		err := tx.Each(kv.Scan{Prefix: core.RoomStreamPrefix(roomID), From: core.RoomStreamKey(roomID, after+1)}, func(k, v []byte) (bool, error) {
			pos, err := kv.LastUint(k)
			if err != nil {
				return false, err
			}
			eventID, _, err := core.DecodeTimelineEntry(v)
			if err != nil {
				return false, err
			}
			entries = append(entries, entry{pos, eventID})
			return len(entries) < s.catchUpEvents, nil
		})
		if err != nil {
			return err
		}
		more = len(entries) == s.catchUpEvents
		written := 0
		for _, e := range entries {
			n, err := s.indexStored(tx, roomID, e.pos, e.eventID, written)
			if errors.Is(err, errChunkFull) {
				more = true
				break
			}
			if err != nil {
				return err
			}
			if n > 0 {
				indexed++
				written += n
			}
			after = e.pos
		}
		return tx.Set(progressKey(roomID), encodeProgress(after))
	})
	return indexed, more, err
}

// errChunkFull: the event's postings would take the transaction over
// catchUpPostings; it goes in the next one.
var errChunkFull = errors.New("search: catch-up transaction full")

// indexStored writes the postings of a stored timeline event, as the
// Indexer did or would have in its commit: not for rejected or redacted
// events, nor events the index does not cover. It returns how many it
// wrote, or errChunkFull (having written none) when written postings are
// in the transaction already and the event's would go over
// catchUpPostings.
func (s *Search) indexStored(tx *kv.Txn, roomID string, pos uint64, eventID string, written int) (int, error) {
	ev, rec, err := s.LoadEvent(tx, eventID)
	if errors.Is(err, core.ErrNotFound) || errors.Is(err, kv.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if rec.Rejected != "" || ev.RedactedBy != "" || rec.Pos != pos {
		return 0, nil
	}
	field, text, ok := indexedText(ev.PDU)
	if !ok {
		return 0, nil
	}
	tokens, counts := Tokens(text, MaxTokensPerEvent)
	if written > 0 && written+len(tokens) > catchUpPostings {
		return 0, errChunkFull
	}
	return len(tokens), writePostings(tx, roomID, pos, field, tokens, counts, rec.StateBefore)
}

// finishCatchUp marks the index built and deletes the rooms' progress (the
// mark first: a crash in between leaves progress that no walk reads, and
// the next opening deletes it).
func (s *Search) finishCatchUp() error {
	if err := s.DB.Update(func(tx *kv.Txn) error { return tx.Set(builtKey(), []byte{}) }); err != nil {
		return err
	}
	return s.dropProgress()
}

// dropProgress deletes the rooms' progress, in bounded transactions.
func (s *Search) dropProgress() error {
	var keys [][]byte
	err := s.DB.View(func(tx *kv.Txn) error {
		return tx.Each(kv.Scan{Prefix: progressPrefix(), KeysOnly: true}, func(k, _ []byte) (bool, error) {
			keys = append(keys, slices.Clone(k))
			return true, nil
		})
	})
	if err != nil {
		return err
	}
	for chunk := range slices.Chunk(keys, 512) {
		err := s.DB.Update(func(tx *kv.Txn) error {
			for _, k := range chunk {
				if err := tx.Delete(k); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}
