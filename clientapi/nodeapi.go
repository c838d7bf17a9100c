package clientapi

import (
	"context"
	"encoding/json"
	"log/slog"
	"time"

	"github.com/edgenode/edgenode/node"
	"github.com/edgenode/edgenode/node/core"
	"github.com/edgenode/edgenode/node/inbound"
	"github.com/edgenode/edgenode/node/push"
)

// Node is what the client API needs of the node, by concern. *node.Node
// implements it (nodeapi_test.go checks it); the handlers reach the node
// only through it.
type Node interface {
	server
	accounts
	rooms
	userData
	e2eeKeys
	keyBackups
	pushAPI
	userDirectory
}

// pushAPI is push rules, pushers and the notifications list (node/push).
type pushAPI interface {
	PushRules(ctx context.Context, userID string) (push.Ruleset, error)
	PushRule(ctx context.Context, userID, kind, ruleID string) (push.Rule, error)
	SetPushRule(ctx context.Context, userID, kind, ruleID, before, after string, body push.RuleBody) error
	DeletePushRule(ctx context.Context, userID, kind, ruleID string) error
	SetPushRuleEnabled(ctx context.Context, userID, kind, ruleID string, enabled bool) error
	SetPushRuleActions(ctx context.Context, userID, kind, ruleID string, actions []json.RawMessage) error
	Pushers(ctx context.Context, userID string) ([]push.Pusher, error)
	SetPusher(ctx context.Context, userID, deviceID string, req push.PusherRequest) error
	Notifications(ctx context.Context, userID, from string, limit int, onlyHighlight bool) ([]push.Notification, string, error)
}

// server is the node's name, configuration and logger, and its admin
// statistics.
type server interface {
	ServerName() string
	Config() core.Config
	Logger() *slog.Logger
	IsAdmin(ctx context.Context, userID string) (bool, error)
	StickyStats(ctx context.Context) (*node.StickyStats, error)
}

// accounts are registration, login and devices.
type accounts interface {
	Register(ctx context.Context, req node.RegisterRequest) (node.Session, error)
	CheckUsername(ctx context.Context, localpart string) error
	Login(ctx context.Context, user, password, deviceID, displayName string) (node.Session, error)
	CheckPassword(ctx context.Context, userID, password string) error
	Logout(ctx context.Context, userID, deviceID string) error
	LogoutAll(ctx context.Context, userID string) error
	Devices(ctx context.Context, userID string) ([]node.Device, error)
	Device(ctx context.Context, userID, deviceID string) (node.Device, error)
	SetDeviceDisplayName(ctx context.Context, userID, deviceID, name string) error
	DeleteDevice(ctx context.Context, userID, deviceID string) error
}

// rooms create rooms, send into them, change memberships and aliases, and
// read single events and state.
type rooms interface {
	CreateRoom(ctx context.Context, req core.CreateRoomRequest) (string, error)
	SendEvent(ctx context.Context, req core.SendRequest) (string, error)
	Redact(ctx context.Context, req core.RedactRequest) (string, error)
	ChangeMembership(ctx context.Context, mc core.MembershipChange) (string, error)
	Unban(ctx context.Context, mc core.MembershipChange) (string, error)
	Forget(ctx context.Context, userID, roomID string) error
	Event(ctx context.Context, userID, eventID string) (*core.Event, error)
	// Bundle works out served events' bundled aggregations (node/relations).
	Bundle(ctx context.Context, userID string, evs []*core.Event) (core.Bundles, error)
	Members(ctx context.Context, userID, roomID string) ([]*core.Event, error)
	Membership(ctx context.Context, roomID, userID string) (core.MembershipInfo, error)
	JoinedRooms(ctx context.Context, userID string) ([]string, error)
	RoomState(ctx context.Context, userID, roomID string) ([]*core.Event, error)
	RoomStateEvent(ctx context.Context, userID, roomID, evType, stateKey string) (*core.Event, error)
	SetAlias(ctx context.Context, creator, alias, roomID string) error
	DeleteAlias(ctx context.Context, userID, alias string) error
	LookupAlias(ctx context.Context, alias string) (core.RoomAlias, error)
	RoomAliases(ctx context.Context, roomID string) ([]string, error)
}

// userData is what a user keeps beside rooms: account data and tags, read
// markers and receipts, typing, presence, profile and to-device messages.
type userData interface {
	AccountData(ctx context.Context, userID, roomID, evType string) (json.RawMessage, error)
	SetAccountData(ctx context.Context, userID, roomID, evType string, content json.RawMessage) error
	Tags(ctx context.Context, userID, roomID string) (json.RawMessage, error)
	SetTag(ctx context.Context, userID, roomID, tag string, content json.RawMessage) error
	DeleteTag(ctx context.Context, userID, roomID, tag string) error
	SetReadMarkers(ctx context.Context, userID, roomID, fullyRead, read, readPrivate string) error
	SetReceipt(ctx context.Context, userID, roomID, receiptType, eventID, threadID string) error
	SetTyping(ctx context.Context, userID, roomID string, typing bool, timeout time.Duration) error
	Presence(ctx context.Context, userID string) (node.PresenceState, error)
	SetPresence(ctx context.Context, userID, presence string, statusMsg *string) error
	SharesRoom(ctx context.Context, a, b string) (bool, error)
	LookupProfile(ctx context.Context, userID, field string) (core.Profile, error)
	SetProfile(ctx context.Context, userID, deviceID string, displayName, avatarURL *string) error
	SendToDevice(ctx context.Context, sender, senderDevice, evType, txnID string, messages map[string]map[string]json.RawMessage) error
}

// e2eeKeys are device, one-time and cross-signing keys.
type e2eeKeys interface {
	UploadKeys(ctx context.Context, userID, deviceID string, deviceKeys json.RawMessage, oneTimeKeys, fallbackKeys map[string]json.RawMessage) (map[string]int, error)
	QueryAllKeys(ctx context.Context, requester string, users map[string][]string, timeout time.Duration) (*inbound.KeysQuery, error)
	ClaimAllKeys(ctx context.Context, claims map[string]map[string]string, timeout time.Duration) (map[string]map[string]map[string]json.RawMessage, map[string]error, error)
	UploadCrossSigningKeys(ctx context.Context, userID string, master, selfSigning, userSigning json.RawMessage) error
	CrossSigningUploadNeedsAuth(ctx context.Context, userID string, master, selfSigning, userSigning json.RawMessage) (bool, error)
	UploadSignatures(ctx context.Context, signer string, signed map[string]map[string]json.RawMessage) (map[string]map[string]error, error)
}
