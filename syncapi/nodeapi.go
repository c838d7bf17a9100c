package syncapi

import (
	"context"
	"encoding/json"

	"github.com/edgenode/edgenode/node"
	"github.com/edgenode/edgenode/node/core"
	"github.com/edgenode/edgenode/node/e2ee"
	"github.com/edgenode/edgenode/node/search"
)

// Reader is what the sync API needs of the node: reads of rooms and of the
// other streams, plus the few calls a sync session makes that change no room
// state (syncSession). *node.Node implements it. The package names no other
// way to reach the node, so the compiler checks that the sync API never
// writes room state; readonly_test.go checks that this method set stays
// within its allow-list.
type Reader interface {
	roomReader
	relationsReader
	streamReader
	syncSession
}

// roomReader reads room events, state and memberships.
type roomReader interface {
	StreamPosition() uint64
	StreamEventsSince(ctx context.Context, rooms map[string]bool, from, to uint64, limit, scanLimit int) (evs []*core.Event, more bool, err error)
	Event(ctx context.Context, userID, eventID string) (*core.Event, error)
	Events(ctx context.Context, ids []string) ([]*core.Event, error)
	RoomEvents(ctx context.Context, userID, roomID string, r core.Range) (core.Page, error)
	CurrentState(ctx context.Context, roomID string) ([]*core.Event, error)
	CurrentStateEvent(ctx context.Context, roomID, evType, stateKey string) (*core.Event, error)
	RoomStateAt(ctx context.Context, roomID string, pos uint64) (*core.State, error)
	StateAfterEvent(ctx context.Context, eventID string, keys []core.StateKey) ([]*core.Event, error)
	Membership(ctx context.Context, roomID, userID string) (core.MembershipInfo, error)
	Memberships(ctx context.Context, userID string) ([]core.RoomMembership, error)
	OutOfBandRoom(ctx context.Context, userID, roomID string) (*core.OutOfBandRoom, error)
	RoomsByBump(ctx context.Context, userID string) ([]core.RoomBump, error)
	SharesRoom(ctx context.Context, a, b string) (bool, error)
	UnreadCounts(ctx context.Context, userID, roomID string) (notify, highlight int, err error)
	ThreadUnreadCounts(ctx context.Context, userID, roomID string) (map[string][2]int, error)
	StickyEvents(ctx context.Context, q node.StickyQuery) ([]node.StickyEvent, uint64, error)
	StickyTTLs(ctx context.Context, roomID string, positions []uint64) (map[uint64]int64, error)
	RoomsWithLiveSticky(ctx context.Context) (rooms map[string]bool, ok bool, err error)
	SearchRoomEvents(ctx context.Context, q search.Query) (search.Result, error)
}

// streamReader reads the streams beside the room events: account data,
// receipts, typing, presence, to-device messages, device lists and key
// counts.
type streamReader interface {
	AccountData(ctx context.Context, userID, roomID, evType string) (json.RawMessage, error)
	AccountDataPosition() uint64
	AccountDataSince(ctx context.Context, userID string, from, to uint64) ([]node.AccountDataChange, error)
	Tags(ctx context.Context, userID, roomID string) (json.RawMessage, error)
	ReceiptPosition() uint64
	ReceiptsSince(ctx context.Context, forUser string, roomIDs []string, from, to uint64) (map[string]json.RawMessage, error)
	Typing(roomID string) (userIDs []string, pos uint64)
	TypingPosition() uint64
	PresencePosition() uint64
	PresenceSince(ctx context.Context, forUser string, from, to uint64) ([]node.PresenceEvent, error)
	ToDevicePosition() uint64
	ToDeviceSince(ctx context.Context, userID, deviceID string, from uint64, limit int) ([]e2ee.ToDeviceEvent, uint64, error)
	DeviceListPosition() uint64
	DeviceListChangesSince(ctx context.Context, forUser string, from, to uint64) ([]string, error)
	OneTimeKeyCounts(ctx context.Context, userID, deviceID string) (map[string]int, error)
	UnusedFallbackKeyTypes(ctx context.Context, userID, deviceID string) ([]string, error)
	Filter(ctx context.Context, userID, filterID string) (json.RawMessage, error)
}

// syncSession is what a sync request does that is not a read. None of it
// touches room state:
//   - BeginSync marks the user online for the request's length (the spec's
//     set_presence on /sync); presence is an EDU stream, not room state.
//   - Listen subscribes to the in-memory notifier to wait for new data.
//   - AckToDevice deletes to-device messages the client's since token
//     acknowledges: the spec makes sync their delivery receipt.
//   - SaveFilter stores a filter for POST /user/{userId}/filter, which the
//     spec puts beside sync and which only sync reads.
type syncSession interface {
	BeginSync(ctx context.Context, userID, setPresence string) (end func(), err error)
	Listen(userID string) *core.Listener
	AckToDevice(ctx context.Context, userID, deviceID string, upTo uint64) error
	SaveFilter(ctx context.Context, userID string, filter json.RawMessage) (string, error)
}
