package search

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/edgenode/edgenode/kv"
	"github.com/edgenode/edgenode/node/core"
	"github.com/matrix-org/gomatrixserverlib"
	"github.com/matrix-org/gomatrixserverlib/spec"
	"github.com/tidwall/gjson"
)

// TablePostings is the search index: token, room ID, stream position ->
// posting (encodePosting).
const TablePostings = "searchpost"

// Field is a searchable key of an event's content.
type Field byte

// The searchable fields, one per indexed event type.
const (
	FieldBody  Field = 1 // content.body of m.room.message
	FieldName  Field = 2 // content.name of m.room.name
	FieldTopic Field = 3 // content.topic of m.room.topic
)

// FieldByKey maps the spec's keys to fields.
var FieldByKey = map[string]Field{
	"content.body":  FieldBody,
	"content.name":  FieldName,
	"content.topic": FieldTopic,
}

// postingKey is the key of one token's posting for the event at pos.
func postingKey(token, roomID string, pos uint64) []byte {
	return kv.Key(TablePostings, token, roomID, pos)
}

// postingPrefix is the prefix of a token's postings in one room.
func postingPrefix(token, roomID string) []byte {
	return kv.Key(TablePostings, token, roomID)
}

// posting is a posting's value. The event's ID is not in it: the room's
// timeline has it at the same position, and only the few events a page
// returns need it.
type posting struct {
	field Field
	// count is how often the token occurs in the field (at most 255).
	count int
	// stateBefore is the event's state-before snapshot ID.
	stateBefore string
}

// encodePosting: field byte, count byte, uvarint length of stateBefore,
// stateBefore.
func encodePosting(p posting) []byte {
	b := make([]byte, 0, 2+binary.MaxVarintLen64+len(p.stateBefore))
	b = append(b, byte(p.field), byte(min(p.count, 255)))
	b = binary.AppendUvarint(b, uint64(len(p.stateBefore)))
	return append(b, p.stateBefore...)
}

func decodePosting(b []byte) (posting, error) {
	f, count, stateBefore, err := postingHead(b)
	return posting{field: f, count: count, stateBefore: string(stateBefore)}, err
}

// postingHead decodes what a query's scan needs of a posting, without
// copying: field, count and the state-before snapshot ID (a sub-slice of
// b).
func postingHead(b []byte) (f Field, count int, stateBefore []byte, err error) {
	if len(b) < 3 {
		return 0, 0, nil, fmt.Errorf("search: malformed posting %x", b)
	}
	n, w := binary.Uvarint(b[2:])
	if w <= 0 || uint64(len(b)-2-w) != n {
		return 0, 0, nil, fmt.Errorf("search: malformed posting %x", b)
	}
	return Field(b[0]), int(b[1]), b[2+w : 2+w+int(n)], nil
}

// indexedText returns the field and text of an event the index covers, or
// ok false.
func indexedText(p gomatrixserverlib.PDU) (f Field, text string, ok bool) {
	var key string
	switch p.Type() {
	case "m.room.message":
		f, key = FieldBody, "body"
	case spec.MRoomName:
		f, key = FieldName, "name"
	case spec.MRoomTopic:
		f, key = FieldTopic, "topic"
	default:
		return 0, "", false
	}
	if (f != FieldBody) != (p.StateKey() != nil) || (p.StateKey() != nil && *p.StateKey() != "") {
		return 0, "", false // a name or topic that is not the room's state, or a message with a state key
	}
	// gjson reads the one field without decoding the rest of the content:
	// this runs for every message the node commits.
	v := gjson.GetBytes(p.Content(), key)
	if v.Type != gjson.String || v.Str == "" {
		return 0, "", false
	}
	return f, v.Str, true
}

// Indexer writes the postings of a batch's events in the room commit, and
// deletes those of the events its redactions redact.
type Indexer struct {
	core.NoPrepare
	Search *Search
}

// Index writes the batch's postings; nothing is left for after the commit.
func (x Indexer) Index(tx *kv.Txn, c *core.RoomCommit, _ core.IndexPlan) (func(), error) {
	return nil, x.Search.index(tx, c)
}

func (s *Search) index(tx *kv.Txn, c *core.RoomCommit) error {
	var redacted map[string]bool // targets redacted within this batch
	for _, ce := range c.Events {
		if ce.PDU.Type() == spec.MRoomRedaction {
			target, err := s.unindexRedacted(tx, c, ce)
			if err != nil {
				return err
			}
			if target != "" {
				if redacted == nil {
					redacted = map[string]bool{}
				}
				redacted[target] = true
			}
		}
	}
	for _, ce := range c.Events {
		if redacted[ce.PDU.EventID()] {
			continue
		}
		field, text, ok := indexedText(ce.PDU)
		if !ok {
			continue
		}
		stateBefore := ""
		if p, ok := c.Batch.ByID[ce.PDU.EventID()]; ok {
			if p.Record.RedactedBy != "" {
				continue // redacted before it arrived (over federation)
			}
			stateBefore = p.Record.StateBefore
		}
		tokens, counts := Tokens(text, MaxTokensPerEvent)
		if err := writePostings(tx, c.RoomID, ce.Pos, field, tokens, counts, stateBefore); err != nil {
			return err
		}
	}
	return nil
}

// writePostings writes the postings of an event's tokens (Tokens of its
// field's text), the event being at pos in roomID's timeline.
func writePostings(tx *kv.Txn, roomID string, pos uint64, field Field, tokens []string, counts map[string]int, stateBefore string) error {
	// One value per token differs only in its count byte: encode it once
	// and copy, all into one allocation (Badger keeps the slices until the
	// commit, so each posting needs its own).
	proto := encodePosting(posting{field: field, count: 1, stateBefore: stateBefore})
	buf := make([]byte, len(proto)*len(tokens))
	// The keys too: every one is the table, its token, then the same room
	// and position, so those are encoded once and all keys share one
	// allocation (postingKey's kv.Key would box and grow per key, a third
	// of a message send's index allocations).
	head := kv.Key(TablePostings)
	tail := kv.AppendUint(kv.AppendString(nil, roomID), pos)
	size := 0
	for _, tok := range tokens {
		size += len(head) + 2*len(tok) + 3 + len(tail) // an escaped token at most doubles
	}
	keys := make([]byte, 0, size)
	for i, tok := range tokens {
		v := buf[i*len(proto) : (i+1)*len(proto) : (i+1)*len(proto)]
		copy(v, proto)
		v[1] = byte(min(counts[tok], 255))
		start := len(keys)
		keys = append(kv.AppendString(append(keys, head...), tok), tail...)
		if err := tx.Set(keys[start:len(keys):len(keys)], v); err != nil {
			return err
		}
	}
	return nil
}

// unindexRedacted deletes the postings of the event redaction ce redacts,
// if the redaction applies (the room core applies it to the stored event in
// this same transaction, after the indexers, under the same rule: the
// target's own sender, or a user with the room's redact power level). It
// returns the target's ID when the redaction applies. The target is read as
// it was before this batch (the core strips it after the indexers run), so
// its words are the ones that were indexed.
func (s *Search) unindexRedacted(tx *kv.Txn, c *core.RoomCommit, ce core.CommittedEvent) (string, error) {
	targetID := ce.PDU.Redacts()
	if targetID == "" {
		return "", nil
	}
	target, err := c.Event(tx, targetID)
	if errors.Is(err, core.ErrNotFound) {
		return "", nil // not here (yet): the query checks RedactedBy instead
	}
	if err != nil {
		return "", err
	}
	if target.RoomID().String() != c.RoomID {
		return "", nil
	}
	if target.SenderID() != ce.PDU.SenderID() {
		ok, err := mayRedact(tx, c, ce)
		if err != nil || !ok {
			return "", err
		}
	}
	field, text, ok := indexedText(target)
	if !ok || field == 0 {
		return targetID, nil
	}
	var pos uint64
	if p, ok := c.Batch.ByID[targetID]; ok {
		pos = p.Record.Pos
	} else {
		rec, err := core.LoadEventRecord(tx, targetID)
		if errors.Is(err, core.ErrNotFound) {
			return targetID, nil
		}
		if err != nil {
			return "", err
		}
		if rec.RedactedBy != "" {
			return targetID, nil // its postings went with the first redaction
		}
		pos = rec.Pos
	}
	if pos == 0 {
		return targetID, nil // never served, never indexed
	}
	tokens, _ := Tokens(text, MaxTokensPerEvent)
	for _, tok := range tokens {
		if err := tx.Delete(postingKey(tok, c.RoomID, pos)); err != nil {
			return "", err
		}
	}
	return targetID, nil
}

// mayRedact reports whether the redaction's sender has the room's redact
// power level at the redaction.
func mayRedact(tx *kv.Txn, c *core.RoomCommit, ce core.CommittedEvent) (bool, error) {
	plID, ok := ce.State.Get(spec.MRoomPowerLevels, "")
	if !ok {
		return false, nil
	}
	plEv, err := c.Event(tx, plID)
	if err != nil {
		return false, err
	}
	pl, err := plEv.PowerLevels()
	if err != nil {
		return false, nil
	}
	return pl.UserLevel(ce.PDU.SenderID()) >= pl.Redact, nil
}
