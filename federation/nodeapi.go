package federation

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"log/slog"

	"github.com/edgenode/edgenode/node"
	"github.com/edgenode/edgenode/node/core"
	"github.com/edgenode/edgenode/node/e2ee"
	"github.com/edgenode/edgenode/node/inbound"
)

// The node methods federation uses, declared here by who uses them: the
// inbound handler (HandlerNode), the outbound sender (SenderNode) and the
// client (ClientNode). *node.Node implements all three; nodeapi_test.go
// checks it.

// identityNode is the node's name, key and logger.
type identityNode interface {
	ServerName() string
	PublicKey() ed25519.PublicKey
	SigningKey() ed25519.PrivateKey
	Logger() *slog.Logger
}

// ClientNode is what the outbound client needs of the node: its name and
// key, to sign requests.
type ClientNode interface {
	ServerName() string
	SigningKey() ed25519.PrivateKey
	Logger() *slog.Logger
}

// SenderNode is what the outbound sender needs of the node: its durable
// per-destination queues and their notifier.
type SenderNode interface {
	ServerName() string
	Logger() *slog.Logger
	Destinations(ctx context.Context) ([]string, error)
	NextTransaction(ctx context.Context, dest string, limit int) (*node.OutboundTxn, error)
	AckAndNext(ctx context.Context, dest string, txn *node.OutboundTxn, limit int) (*node.OutboundTxn, error)
	ShrinkTransaction(ctx context.Context, dest string, txn *node.OutboundTxn, limit int) (*node.OutboundTxn, error)
	SetFederationNotify(fn func(dests []string))
}

// HandlerNode is what the inbound handler needs of the node.
type HandlerNode interface {
	identityNode
	sharedServers
	inboundRooms
	inboundEDUs
	inboundQueries
}

// inboundRooms takes other servers' PDUs, joins, leaves and invites, and
// answers their reads of room history and state.
type inboundRooms interface {
	InboundTxn(ctx context.Context, origin, txnID string, process func(context.Context) (resp []byte, durable bool, err error)) ([]byte, error)
	InputFederatedPDUs(ctx context.Context, in inbound.FederatedInput) ([]inbound.FederatedPDUResult, error)
	MakeJoin(ctx context.Context, roomID, userID string, versions []string) (*inbound.JoinTemplate, error)
	SendJoin(ctx context.Context, origin, roomID, eventID string, raw json.RawMessage) (*inbound.SendJoinResult, error)
	MakeLeave(ctx context.Context, roomID, userID string) (*inbound.LeaveTemplate, error)
	SendLeave(ctx context.Context, origin, roomID, eventID string, raw json.RawMessage) error
	ReceiveInvite(ctx context.Context, req inbound.InviteRequest) (json.RawMessage, error)
	MissingEvents(ctx context.Context, origin, roomID string, req inbound.MissingEventsRequest) ([]json.RawMessage, error)
	Backfill(ctx context.Context, origin, roomID string, from []string, limit int) ([]json.RawMessage, error)
	FederationEvent(ctx context.Context, origin, eventID string) (json.RawMessage, error)
	FederationEventAuth(ctx context.Context, origin, roomID, eventID string) ([]json.RawMessage, error)
	FederationState(ctx context.Context, origin, roomID, eventID string) (*inbound.RoomState, error)
	FederationStateIDs(ctx context.Context, origin, roomID, eventID string) (*inbound.RoomStateIDs, error)
}

// inboundEDUs takes other servers' EDUs.
type inboundEDUs interface {
	ReceiveTyping(ctx context.Context, origin, roomID, userID string, typing bool) error
	ReceiveReceipt(ctx context.Context, origin string, r node.RemoteReceipt) error
	ReceivePresence(ctx context.Context, origin string, p node.RemotePresence) error
	ReceiveToDevice(ctx context.Context, origin string, m node.RemoteToDevice) error
	ReceiveDeviceListUpdate(ctx context.Context, origin, userID string) error
}

// inboundQueries answers other servers' queries about local aliases, users
// and keys.
type inboundQueries interface {
	LookupAlias(ctx context.Context, alias string) (core.RoomAlias, error)
	Profile(ctx context.Context, userID string) (core.Profile, error)
	UserDevices(ctx context.Context, userID string) (*e2ee.UserDevices, error)
	QueryKeys(ctx context.Context, requester string, users map[string][]string) (deviceKeys map[string]map[string]json.RawMessage, masterKeys, selfSigningKeys, userSigningKeys map[string]json.RawMessage, err error)
	ClaimKeys(ctx context.Context, claims map[string]map[string]string) (map[string]map[string]map[string]json.RawMessage, error)
}
