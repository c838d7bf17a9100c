package core

import (
	"context"
	"errors"
	"fmt"

	"github.com/edgenode/edgenode/kv"
	"github.com/matrix-org/gomatrixserverlib"
	"github.com/matrix-org/gomatrixserverlib/spec"
)

// RoomRecord is the room's head: version, forward extremities and the current
// state's snapshot.
type RoomRecord struct {
	Version     gomatrixserverlib.RoomVersion `json:"v"`
	Extremities []string                      `json:"ext"`
	// ExtStates is the state after each extremity, in the same order
	// (extStates; absent in heads written before it was kept).
	ExtStates []string `json:"exts,omitempty"`
	State     string   `json:"state"`
	Depth     int64    `json:"depth"`
}

// MembershipRecord is a user's current membership in a room.
type MembershipRecord struct {
	Membership string `json:"m"`
	EventID    string `json:"e"`
	Pos        uint64 `json:"p"`
	Forgotten  bool   `json:"f,omitempty"`
	// OutOfBand: the room is unknown here; the event is in tOutOfBand.
	OutOfBand bool `json:"o,omitempty"`
}

func LoadRoom(tx *kv.Txn, roomID string) (*RoomRecord, error) {
	var r RoomRecord
	if err := tx.GetJSON(RoomKey(roomID), &r); err != nil {
		if errors.Is(err, kv.ErrNotFound) {
			return nil, fmt.Errorf("room %s: %w", roomID, ErrNotFound)
		}
		return nil, err
	}
	return &r, nil
}

// RoomVersion is a stored room's version; an unknown room is ErrNotFound.
func (n *Node) RoomVersion(roomID string) (gomatrixserverlib.RoomVersion, error) {
	var version gomatrixserverlib.RoomVersion
	err := n.DB.View(func(tx *kv.Txn) error {
		room, err := LoadRoom(tx, roomID)
		if err == nil {
			version = room.Version
		}
		return err
	})
	return version, err
}

// UserIDForSender maps a sender to a user ID. In room versions 10 and 11 they
// are the same; a sender that does not parse is an error, never (nil, nil),
// which would make the library skip signature checks.
func UserIDForSender(_ spec.RoomID, s spec.SenderID) (*spec.UserID, error) {
	u, err := spec.NewUserID(string(s), true)
	if err != nil {
		return nil, fmt.Errorf("sender %q: %w", s, err)
	}
	return u, nil
}

// stripedLocks serialises room input per room with a fixed number of
// mutexes, so no map keyed by room grows without bound. Two rooms may share a
// stripe; that only costs parallelism.
type stripedLocks [64]chanMutex

// chanMutex is a mutex whose lock can give up when ctx is done.
type chanMutex chan struct{}

// lock takes m, or gives up with ctx's error.
func (m chanMutex) lock(ctx context.Context) error {
	select {
	case m <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Unlock releases m, which must be held.
func (m chanMutex) Unlock() { <-m }

func newStripedLocks() *stripedLocks {
	var s stripedLocks
	for i := range s {
		s[i] = make(chanMutex, 1)
	}
	return &s
}

func (s *stripedLocks) forRoom(roomID string) chanMutex {
	h := uint32(2166136261)
	for i := 0; i < len(roomID); i++ {
		h = (h ^ uint32(roomID[i])) * 16777619
	}
	return s[h%uint32(len(s))]
}
