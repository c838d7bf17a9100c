package node

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/edgenode/edgenode/kv"
	"github.com/edgenode/edgenode/node/core"
	"github.com/edgenode/edgenode/node/push"
	"github.com/matrix-org/gomatrixserverlib/spec"
)

// Account data types the node itself gives meaning to.
const (
	// AccountDataTag is per-room account data holding the room's tags.
	AccountDataTag = "m.tag"
	// AccountDataFullyRead is per-room account data holding the read marker.
	AccountDataFullyRead = "m.fully_read"
	// AccountDataPushRules is global account data holding push rules.
	AccountDataPushRules = "m.push_rules"
)

// Limits on account data. Every value is written in one transaction, which
// on the phone profile may hold little more than 1 MiB, and a value is sent
// whole in /sync each time it changes; 256 KiB leaves room for the largest
// real-world values (m.direct of heavy users) with headroom.
const (
	maxAccountDataBytes = 256 << 10
	maxAccountDataType  = 255
	maxTagBytes         = 255
)

// accountDataRecord is the latest value of one (user, room, type).
type accountDataRecord struct {
	// Pos is the account-data stream position of the write that set it; its
	// stream index entry is deleted when a newer write supersedes it.
	Pos     uint64          `json:"pos"`
	Content json.RawMessage `json:"c"`
}

// accountDataRef is the value of a stream index entry: what changed.
type accountDataRef struct {
	RoomID string `json:"r,omitempty"`
	Type   string `json:"t"`
}

// AccountDataChange is the latest value of one piece of account data.
type AccountDataChange struct {
	// RoomID is "" for global account data.
	RoomID  string
	Type    string
	Content json.RawMessage
}

// errUnchanged aborts a stream commit whose write would change nothing, so
// no position is spent and nobody is woken for it.
var errUnchanged = errors.New("unchanged")

// openUserDataStreams opens the account data, receipt and presence streams
// and starts this run's typing state; New calls it once.
func (n *Node) openUserDataStreams() error {
	for _, s := range []struct {
		name string
		dst  **kv.Stream
	}{{streamAccountData, &n.accountData}, {streamReceipts, &n.receipts}, {streamPresence, &n.presence}} {
		st, err := n.DB.Stream(s.name)
		if err != nil {
			return err
		}
		*s.dst = st
	}
	t, err := openTyping(n.DB)
	if err != nil {
		return err
	}
	n.typing = t
	return nil
}

// AccountDataPosition is the latest account-data stream position.
func (n *Node) AccountDataPosition() uint64 { return n.accountData.Current() }

// SetAccountData stores a user's account data of one type, globally (roomID
// "") or for one room. content must be a JSON object. Writing the value that
// is already stored is a no-op. The caller decides who may write which types:
// the generic client endpoint refuses m.fully_read and m.push_rules.
func (n *Node) SetAccountData(ctx context.Context, userID, roomID, evType string, content json.RawMessage) error {
	compact, err := checkAccountDataContent(content)
	if err != nil {
		return err
	}
	return n.updateAccountData(ctx, userID, roomID, evType, func(json.RawMessage) (json.RawMessage, error) {
		return compact, nil
	})
}

// AccountData returns the content of a user's account data of one type
// (roomID "" for global), or ErrNotFound.
func (n *Node) AccountData(ctx context.Context, userID, roomID, evType string) (json.RawMessage, error) {
	var rec accountDataRecord
	err := n.DB.View(func(tx *kv.Txn) error { return tx.GetJSON(accountDataKey(userID, roomID, evType), &rec) })
	if errors.Is(err, kv.ErrNotFound) && roomID == "" && evType == AccountDataPushRules {
		return push.DefaultPushRulesContent(userID), nil // the rules are there before any change
	}
	if errors.Is(err, kv.ErrNotFound) {
		return nil, fmt.Errorf("account data %s: %w", evType, core.ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	return rec.Content, nil
}

// AccountDataSince returns the latest content of every piece of a user's
// account data changed after from, up to and including to (from 0: all of
// it), in stream order. A value changed again after to is left out: it is
// reported by the next call, from to.
func (n *Node) AccountDataSince(ctx context.Context, userID string, from, to uint64) ([]AccountDataChange, error) {
	var out []AccountDataChange
	if to <= from {
		return out, nil
	}
	err := n.DB.View(func(tx *kv.Txn) error {
		scan := kv.Scan{Prefix: accountDataStreamPrefix(userID), From: accountDataStreamKey(userID, from+1)}
		return tx.Each(scan, func(k, v []byte) (bool, error) {
			pos, err := kv.LastUint(k)
			if err != nil {
				return false, err
			}
			if pos > to {
				return false, nil
			}
			var ref accountDataRef
			if err := core.DecodeJSON(v, &ref); err != nil {
				return false, err
			}
			var rec accountDataRecord
			if err := tx.GetJSON(accountDataKey(userID, ref.RoomID, ref.Type), &rec); err != nil {
				return false, fmt.Errorf("account data index %d: %w", pos, err)
			}
			out = append(out, AccountDataChange{RoomID: ref.RoomID, Type: ref.Type, Content: rec.Content})
			return true, nil
		})
	})
	return out, err
}

// updateAccountData replaces one piece of account data with what fn makes of
// the current value (nil when there is none). fn runs inside the stream's
// commit, which is serialised, so read-modify-write updates such as tag
// changes never lose a concurrent update. Returning the stored value
// unchanged spends no position and wakes nobody.
func (n *Node) updateAccountData(ctx context.Context, userID, roomID, evType string, fn func(old json.RawMessage) (json.RawMessage, error)) error {
	return n.updateAccountDataTx(ctx, userID, roomID, evType, func(_ *kv.Txn, old json.RawMessage) (json.RawMessage, error) { return fn(old) })
}

// updateAccountDataTx is updateAccountData for an fn that also writes in
// the stream's transaction (push rules bump their version there).
func (n *Node) updateAccountDataTx(ctx context.Context, userID, roomID, evType string, fn func(tx *kv.Txn, old json.RawMessage) (json.RawMessage, error)) error {
	if err := checkAccountDataKey(roomID, evType); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	_, err := n.accountData.Commit(1, func(tx *kv.Txn, pos uint64) error {
		key := accountDataKey(userID, roomID, evType)
		var old accountDataRecord
		if err := tx.GetJSON(key, &old); err != nil && !errors.Is(err, kv.ErrNotFound) {
			return err
		}
		content, err := fn(tx, old.Content)
		if err != nil {
			return err
		}
		if bytes.Equal(content, old.Content) {
			return errUnchanged
		}
		if len(content) > maxAccountDataBytes {
			return fmt.Errorf("%w: account data over %d bytes", core.ErrTooLarge, maxAccountDataBytes)
		}
		if old.Pos != 0 {
			if err := tx.Delete(accountDataStreamKey(userID, old.Pos)); err != nil {
				return err
			}
		}
		if err := tx.SetJSON(accountDataStreamKey(userID, pos), accountDataRef{RoomID: roomID, Type: evType}); err != nil {
			return err
		}
		return tx.SetJSON(key, accountDataRecord{Pos: pos, Content: content})
	})
	if errors.Is(err, errUnchanged) {
		return nil
	}
	if err != nil {
		return err
	}
	n.Notifier.Wake(userID)
	return nil
}

// checkAccountDataKey validates where account data is stored.
func checkAccountDataKey(roomID, evType string) error {
	if evType == "" || len(evType) > maxAccountDataType {
		return fmt.Errorf("%w: account data type must be 1 to %d bytes", core.ErrInvalidParam, maxAccountDataType)
	}
	if roomID != "" {
		if _, err := spec.NewRoomID(roomID); err != nil {
			return fmt.Errorf("%w: %q is not a room ID", core.ErrInvalidParam, roomID)
		}
	}
	return nil
}

// checkAccountDataContent checks that content is a JSON object of bounded
// size and returns it compacted, so equal values compare equal as bytes.
func checkAccountDataContent(content json.RawMessage) (json.RawMessage, error) {
	if len(content) > maxAccountDataBytes {
		return nil, fmt.Errorf("%w: account data over %d bytes", core.ErrTooLarge, maxAccountDataBytes)
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(content, &obj); err != nil || obj == nil {
		return nil, fmt.Errorf("%w: account data must be a JSON object", core.ErrBadInput)
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, content); err != nil {
		return nil, fmt.Errorf("%w: account data: %v", core.ErrBadInput, err)
	}
	return buf.Bytes(), nil
}

// Tags returns a user's tags on a room: the content of its m.tag account
// data, {"tags": {...}}, or {"tags": {}} when the room has none.
func (n *Node) Tags(ctx context.Context, userID, roomID string) (json.RawMessage, error) {
	if err := checkAccountDataKey(roomID, AccountDataTag); err != nil {
		return nil, err
	}
	raw, err := n.AccountData(ctx, userID, roomID, AccountDataTag)
	if errors.Is(err, core.ErrNotFound) {
		return json.RawMessage(`{"tags":{}}`), nil
	}
	if err != nil {
		return nil, err
	}
	_, tags := splitTags(raw)
	out, err := json.Marshal(map[string]any{"tags": tags})
	return out, err
}

// SetTag adds (or replaces) one tag on a room. content is the tag's object
// ({"order": 0.5} or {}); order, when given, must be a number.
func (n *Node) SetTag(ctx context.Context, userID, roomID, tag string, content json.RawMessage) error {
	if err := checkTagName(tag); err != nil {
		return err
	}
	compact, err := checkAccountDataContent(content)
	if err != nil {
		return err
	}
	var t struct {
		Order json.RawMessage `json:"order"`
	}
	_ = json.Unmarshal(compact, &t) // an object, as checked above
	if t.Order != nil {
		var f float64
		if err := json.Unmarshal(t.Order, &f); err != nil {
			return fmt.Errorf("%w: tag order must be a number", core.ErrBadInput)
		}
	}
	return n.updateAccountData(ctx, userID, roomID, AccountDataTag, func(old json.RawMessage) (json.RawMessage, error) {
		top, tags := splitTags(old)
		tags[tag] = compact
		return joinTags(top, tags)
	})
}

// DeleteTag removes one tag from a room; removing a tag that is not there
// succeeds and changes nothing.
func (n *Node) DeleteTag(ctx context.Context, userID, roomID, tag string) error {
	if err := checkTagName(tag); err != nil {
		return err
	}
	return n.updateAccountData(ctx, userID, roomID, AccountDataTag, func(old json.RawMessage) (json.RawMessage, error) {
		top, tags := splitTags(old)
		if _, ok := tags[tag]; !ok {
			return old, nil
		}
		delete(tags, tag)
		return joinTags(top, tags)
	})
}

func checkTagName(tag string) error {
	if tag == "" || len(tag) > maxTagBytes {
		return fmt.Errorf("%w: tag must be 1 to %d bytes", core.ErrInvalidParam, maxTagBytes)
	}
	return nil
}

// splitTags splits m.tag content into its other top-level fields and its
// tags. m.tag can also be written through the generic account data endpoint,
// so malformed stored content is tolerated: what cannot be read as tags is
// replaced, other fields are kept.
func splitTags(raw json.RawMessage) (top, tags map[string]json.RawMessage) {
	top, tags = map[string]json.RawMessage{}, map[string]json.RawMessage{}
	if raw == nil {
		return top, tags
	}
	if json.Unmarshal(raw, &top) != nil || top == nil {
		top = map[string]json.RawMessage{}
	}
	if json.Unmarshal(top["tags"], &tags) != nil || tags == nil {
		tags = map[string]json.RawMessage{}
	}
	for k, v := range tags {
		if !bytes.HasPrefix(bytes.TrimSpace(v), []byte("{")) {
			delete(tags, k) // a tag's value is an object; drop what is not
		}
	}
	return top, tags
}

// joinTags is splitTags's inverse.
func joinTags(top, tags map[string]json.RawMessage) (json.RawMessage, error) {
	b, err := json.Marshal(tags)
	if err != nil {
		return nil, err
	}
	top["tags"] = b
	return json.Marshal(top)
}
