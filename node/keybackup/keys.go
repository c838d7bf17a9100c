package keybackup

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/edgenode/edgenode/kv"
	"github.com/edgenode/edgenode/node/core"
)

// RoomKeysUpload is the keys of one upload: room ID -> session ID -> the
// key's KeyBackupData JSON.
type RoomKeysUpload map[string]map[string]json.RawMessage

// CheckRoomID checks a room ID given to the key backup. Keys are the
// client's, so this is only what storage needs: an ID that starts with !
// and fits its bound.
func CheckRoomID(roomID string) error {
	if !strings.HasPrefix(roomID, "!") || len(roomID) > MaxIDBytes || !utf8.ValidString(roomID) {
		return fmt.Errorf("%w: %q is not a room ID", core.ErrInvalidParam, roomID)
	}
	return nil
}

// CheckSessionID checks a megolm session ID given to the key backup.
func CheckSessionID(sessionID string) error {
	if sessionID == "" || len(sessionID) > MaxIDBytes || !utf8.ValidString(sessionID) {
		return fmt.Errorf("%w: invalid session ID", core.ErrInvalidParam)
	}
	return nil
}

// upKey is one checked key of an upload.
type upKey struct {
	room, session string
	key           keyData
	stored        []byte
}

// PutRoomKeys stores keys in userID's backup version, which must be the
// current one (WrongVersionError otherwise). A key for a session the
// backup holds replaces the stored one only when it is better (keyData.
// better). It returns the backup's count and etag after the upload; the
// etag changes when a key was added or replaced. The keys are written in
// batches of writeBatch, each a transaction of its own: an upload cut
// short leaves the batches before it, which a client's retry completes.
func (b *KeyBackups) PutRoomKeys(ctx context.Context, userID, version string, upload RoomKeysUpload) (Counts, error) {
	keys, err := checkUpload(upload)
	if err != nil {
		return Counts{}, err
	}
	var counts Counts
	for first := true; first || len(keys) > 0; first = false {
		batch := keys[:min(len(keys), writeBatch)]
		keys = keys[len(batch):]
		err := b.update(ctx, func(tx *kv.Txn) error {
			v, rec, err := currentForWrite(tx, userID, version)
			if err != nil {
				return err
			}
			changed := false
			for _, k := range batch {
				key := sessionKey(userID, v, k.room, k.session)
				old, err := tx.Get(key)
				switch {
				case errors.Is(err, kv.ErrNotFound):
					if rec.Count >= MaxKeysPerBackup {
						return fmt.Errorf("%w: the backup holds %d keys, the most it may", core.ErrTooLarge, MaxKeysPerBackup)
					}
					rec.Count++
				case err != nil:
					return err
				default:
					var o keyData
					if err := core.DecodeJSON(old, &o); err != nil {
						return err
					}
					if !k.key.better(o) {
						continue
					}
					rec.Bytes -= int64(len(old))
				}
				rec.Bytes += int64(len(k.stored))
				if rec.Bytes > MaxBackupBytes {
					return fmt.Errorf("%w: the backup holds %d MiB of keys, the most it may", core.ErrTooLarge, MaxBackupBytes>>20)
				}
				if err := tx.Set(key, k.stored); err != nil {
					return err
				}
				changed = true
			}
			if changed {
				rec.Etag++
				if err := tx.SetJSON(versionKey(userID, v), rec); err != nil {
					return err
				}
			}
			counts = rec.counts()
			return nil
		})
		if err != nil {
			return Counts{}, err
		}
	}
	return counts, nil
}

// checkUpload checks every key of an upload before any is written and
// returns them in key order.
func checkUpload(upload RoomKeysUpload) ([]upKey, error) {
	n := 0
	for _, sessions := range upload {
		n += len(sessions)
	}
	if n > MaxKeysPerRequest {
		return nil, fmt.Errorf("%w: %d keys in one request, at most %d", core.ErrTooLarge, n, MaxKeysPerRequest)
	}
	out := make([]upKey, 0, n)
	for room, sessions := range upload {
		if err := CheckRoomID(room); err != nil {
			return nil, err
		}
		for session, raw := range sessions {
			if err := CheckSessionID(session); err != nil {
				return nil, err
			}
			k, stored, err := parseKey(raw)
			if err != nil {
				return nil, fmt.Errorf("room %s, session %s: %w", room, session, err)
			}
			out = append(out, upKey{room: room, session: session, key: k, stored: stored})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].room != out[j].room {
			return out[i].room < out[j].room
		}
		return out[i].session < out[j].session
	})
	return out, nil
}

// currentForWrite returns the user's current version and its record when
// version names it: keys are written to the current version only.
func currentForWrite(tx *kv.Txn, userID, version string) (uint64, versionRecord, error) {
	cur, err := currentVersion(tx, userID)
	if err != nil {
		return 0, versionRecord{}, err
	}
	if cur == 0 {
		return 0, versionRecord{}, errNoBackup
	}
	if v, ok := parseVersion(version); !ok || v != cur {
		return 0, versionRecord{}, &WrongVersionError{Current: formatVersion(cur)}
	}
	rec, found, err := getVersion(tx, userID, cur)
	if err == nil && !found {
		err = errNoBackup
	}
	return cur, rec, err
}

// existingVersion returns version's number and record; it must exist.
func existingVersion(tx *kv.Txn, userID, version string) (uint64, versionRecord, error) {
	v, ok := parseVersion(version)
	if !ok {
		return 0, versionRecord{}, unknownVersion(version)
	}
	rec, found, err := getVersion(tx, userID, v)
	if err == nil && !found {
		err = unknownVersion(version)
	}
	return v, rec, err
}

// RoomKey returns one session's key from one of userID's backup versions.
func (b *KeyBackups) RoomKey(ctx context.Context, userID, version, roomID, sessionID string) (json.RawMessage, error) {
	var out json.RawMessage
	err := b.db.View(func(tx *kv.Txn) error {
		v, _, err := existingVersion(tx, userID, version)
		if err != nil {
			return err
		}
		out, err = tx.Get(sessionKey(userID, v, roomID, sessionID))
		if errors.Is(err, kv.ErrNotFound) {
			return fmt.Errorf("%w: no key for this session in the backup", core.ErrNotFound)
		}
		return err
	})
	return out, err
}

// RoomKeys calls fn with each key in one of userID's backup versions (in
// one room when roomID is not ""), in room and session order. The keys are
// read readPage at a time, and fn is called outside any transaction, so a
// slow reader holds neither memory nor a transaction for the whole backup.
// An unknown version is an error before fn is first called.
func (b *KeyBackups) RoomKeys(ctx context.Context, userID, version, roomID string, fn func(roomID, sessionID string, key json.RawMessage) error) error {
	type entry struct {
		room, session string
		key           []byte
	}
	var prefix, from []byte
	for first := true; ; first = false {
		if err := ctx.Err(); err != nil {
			return err
		}
		var page []entry
		err := b.db.View(func(tx *kv.Txn) error {
			if first {
				v, _, err := existingVersion(tx, userID, version)
				if err != nil {
					return err
				}
				prefix = keysPrefix(userID, v)
				if roomID != "" {
					prefix = roomKeysPrefix(userID, v, roomID)
				}
			}
			return tx.Each(kv.Scan{Prefix: prefix, From: from}, func(k, val []byte) (bool, error) {
				_, parts, err := kv.DecodeKey(k)
				if err != nil || len(parts) != 4 {
					return false, fmt.Errorf("malformed backup key %q: %v", k, err)
				}
				room, _ := parts[2].(string)
				session, _ := parts[3].(string)
				page = append(page, entry{room, session, bytes.Clone(val)})
				// The next page starts just after this key.
				from = append(bytes.Clone(k), 0)
				return len(page) < readPage, nil
			})
		})
		if err != nil {
			return err
		}
		for _, e := range page {
			if err := fn(e.room, e.session, e.key); err != nil {
				return err
			}
		}
		if len(page) < readPage {
			return nil
		}
	}
}

// DeleteRoomKeys deletes keys from one of userID's backup versions: all of
// them, one room's (roomID not "") or one session's (sessionID not ""
// too). It deletes deleteBatch keys per transaction and returns the count
// and etag after.
func (b *KeyBackups) DeleteRoomKeys(ctx context.Context, userID, version, roomID, sessionID string) (Counts, error) {
	var counts Counts
	for first := true; ; first = false {
		var n int
		err := b.update(ctx, func(tx *kv.Txn) error {
			v, rec, err := existingVersion(tx, userID, version)
			if err != nil {
				return err
			}
			prefix := keysPrefix(userID, v)
			switch {
			case sessionID != "":
				prefix = sessionKey(userID, v, roomID, sessionID)
			case roomID != "":
				prefix = roomKeysPrefix(userID, v, roomID)
			}
			// The values are read to know how many bytes are freed.
			var freed int64
			seen := 0
			n, err = tx.DeleteEach(kv.Scan{Prefix: prefix}, func(k, val []byte, del func([]byte)) (bool, error) {
				del(k)
				freed += int64(len(val))
				seen++
				return seen < deleteBatch, nil
			})
			if err != nil {
				return err
			}
			if n > 0 {
				rec.Count -= n
				rec.Bytes -= freed
				rec.Etag++
				if err := tx.SetJSON(versionKey(userID, v), rec); err != nil {
					return err
				}
			}
			counts = rec.counts()
			return nil
		})
		if err != nil {
			if !first && errors.Is(err, core.ErrNotFound) {
				// The version itself was deleted meanwhile: its keys go with it.
				return Counts{Etag: counts.Etag}, nil
			}
			return Counts{}, err
		}
		if n < deleteBatch {
			return counts, nil
		}
	}
}
