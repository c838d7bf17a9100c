package core

import (
	"log/slog"
	"time"

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
	// LoginFailures bounds wrong passwords at POST /login, per user and per
	// client address; zero fields take DefaultLoginFailureBurst and
	// DefaultLoginFailureEvery.
	LoginFailures RateLimit
	// Registrations bounds accounts made through POST /register, per
	// client address and, at RegistrationOverallFactor times the rate and
	// burst, overall; zero fields take DefaultRegistrationBurst and
	// DefaultRegistrationEvery, a negative Burst turns the limit off (load
	// tools that register hundreds of users).
	Registrations RateLimit
	// WebOrigins are the web origins (scheme://host[:port]) whose pages may
	// log in and register through the client API from a browser; "*"
	// allows any page. Authenticated requests need an access token, which
	// a page has only once it has logged in, so they are not restricted.
	WebOrigins []string
	// URLPreview turns on the client API's preview_url endpoints, with
	// which a user makes the node fetch a web page and summarise it. Off by
	// default: it makes the node fetch URLs others name (package
	// urlpreview refuses addresses that are not globally routable).
	URLPreview bool
	// CacheBytes bounds what the node caches in memory (parsed events,
	// decoded state, users' room lists), in bytes as estimated; zero takes
	// the storage profile's default (caches.go: 12 MiB on a phone, 16 MiB
	// on a Pi, 96 MiB on a server).
	CacheBytes int64
	// NoSyncWrites turns off fsync per commit (faster; a power loss may lose
	// the last writes). Off by default.
	NoSyncWrites bool
	// DefaultRoomVersion is used by createRoom when none is asked for.
	DefaultRoomVersion gomatrixserverlib.RoomVersion
	// Logger receives the node's logs; nil uses slog.Default().
	Logger *slog.Logger
	// DataDirCheckInterval is how often the node checks that its data
	// directory is still there and writable (health.go); zero is
	// DefaultDataDirCheckInterval, negative turns the check off.
	DataDirCheckInterval time.Duration
	// LowDiskSpace is the free space, in bytes, under which the same check
	// warns (StorageWarning); zero is DefaultLowDiskSpace.
	LowDiskSpace int64
	// ValueLogGCInterval is how often the node looks for value-log garbage
	// if anything was written since it last looked (vloggc.go); zero means
	// DefaultValueLogGCInterval.
	ValueLogGCInterval time.Duration
	// Clock, when set, is the node's clock in place of time.Now: tests use
	// it to drive what happens with time (presence decay, expiries) from the
	// moment the node opens, without waiting.
	Clock func() time.Time
}

// SupportedRoomVersions are the room versions this node accepts. Version 12's
// state resolution is unsafe at the pinned gomatrixserverlib commit.
var supportedRoomVersions = map[gomatrixserverlib.RoomVersion]bool{
	gomatrixserverlib.RoomVersionV10: true,
	gomatrixserverlib.RoomVersionV11: true,
}

// RoomVersionSupported reports whether this node accepts room version v.
func RoomVersionSupported(v gomatrixserverlib.RoomVersion) bool { return supportedRoomVersions[v] }

// SupportedRoomVersions lists the room versions this node accepts.
func SupportedRoomVersions() []gomatrixserverlib.RoomVersion {
	return []gomatrixserverlib.RoomVersion{gomatrixserverlib.RoomVersionV10, gomatrixserverlib.RoomVersionV11}
}

// DefaultRoomVersion is the version createRoom uses unless configured otherwise.
const DefaultRoomVersion = gomatrixserverlib.RoomVersionV10

// RateLimit is a token bucket: Burst requests at once, then one more every
// Every.
type RateLimit struct {
	Burst int
	Every time.Duration
}

// Default login failure limits: five wrong passwords in a row, then one
// every ten seconds (360 an hour). Synapse's default for failed logins is
// three at once and one every six seconds per account; an embedded node has
// one or a few users, so a slightly larger burst spares a person mistyping
// on a phone keyboard while a guesser is held to a few hundred tries an
// hour.
const (
	DefaultLoginFailureBurst = 5
	DefaultLoginFailureEvery = 10 * time.Second
)

// Default registration limits: ten accounts at once from a client address,
// then one a minute (60 an hour).
// Synapse's default rc_registration is a burst of 3, then 0.17 a second
// (one every six seconds), per address. A personal node makes a handful of
// accounts in its life, so a slower refill costs its owner nothing, while
// a web page in the device's browser (which sees the node as 127.0.0.1,
// the same address as the owner's apps) cannot fill the disk with
// accounts; the burst of ten is larger than Synapse's so that test scripts
// and a benchmark's default run (hsbench registers ten users) need no
// configuration.
const (
	DefaultRegistrationBurst = 10
	DefaultRegistrationEvery = time.Minute
)

// RegistrationOverallFactor scales Config.Registrations into the limit on
// all addresses together: a LAN node's clients each get the per-address
// limit, and spreading over many addresses (IPv6 gives a host plenty)
// buys no more than this many times it.
const RegistrationOverallFactor = 4
