package node

import (
	"log/slog"

	"github.com/matrix-org/gomatrixserverlib"
)

// Config configures a Node. Only DataDir is required.
type Config struct {
	// DataDir holds the database and the node's signing key.
	DataDir string
	// ServerName overrides the server name; by default it is the lowercase hex
	// of the node's ed25519 public key.
	ServerName string
	// StorageProfile names the kv profile: "phone", "pi" (default) or "server".
	StorageProfile string
	// OpenRegistration lets anyone who can reach the client API register.
	OpenRegistration bool
	// NoSyncWrites turns off fsync per commit (faster; a power loss may lose
	// the last writes). Off by default.
	NoSyncWrites bool
	// DefaultRoomVersion is used by createRoom when none is asked for.
	DefaultRoomVersion gomatrixserverlib.RoomVersion
	// Logger receives the node's logs; nil uses slog.Default().
	Logger *slog.Logger
}

// SupportedRoomVersions are the room versions this node accepts. Version 12's
// state resolution is unsafe at the pinned gomatrixserverlib commit.
var supportedRoomVersions = map[gomatrixserverlib.RoomVersion]bool{
	gomatrixserverlib.RoomVersionV10: true,
	gomatrixserverlib.RoomVersionV11: true,
}

// SupportedRoomVersions lists the room versions this node accepts.
func SupportedRoomVersions() []gomatrixserverlib.RoomVersion {
	return []gomatrixserverlib.RoomVersion{gomatrixserverlib.RoomVersionV10, gomatrixserverlib.RoomVersionV11}
}

// DefaultRoomVersion is the version createRoom uses unless configured otherwise.
const DefaultRoomVersion = gomatrixserverlib.RoomVersionV10
