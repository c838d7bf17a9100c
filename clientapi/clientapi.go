package clientapi

import (
	"log/slog"

	"github.com/edgenode/edgenode/internal/mxhttp"
)

// v3 is the prefix of every versioned client-server endpoint served here.
const v3 = "/_matrix/client/v3"

// api holds what every handler needs. Handlers are methods on it so that
// nothing lives in package-level variables.
type api struct {
	n      Node
	log    *slog.Logger
	logins *loginLimiter
	regs   *registerLimiter
	// previews serves preview_url; nil when the node has it turned off.
	previews *urlPreviews
}

// Register adds the client API's routes to rt. The whole route table is in
// this file, by area, so what the package serves can be read at a glance; the
// handlers live in one file per area. n is the node (a *node.Node), reached
// only through Node.
func Register(rt *mxhttp.Router, n Node) {
	a := &api{n: n, log: n.Logger().With("component", "clientapi"), logins: newLoginLimiter(n.Config().LoginFailures),
		regs: newRegisterLimiter(n.Config().Registrations, n.Config().Clock), previews: newURLPreviews(n.Config())}

	a.registerAccounts(rt)
	a.registerRooms(rt)
	a.registerUserData(rt)
	a.registerPush(rt)
	a.registerE2EE(rt)

	// URL previews (previewurl.go): registered even when turned off, so
	// that an unauthenticated request is told so first.
	rt.Authed("GET /_matrix/client/v1/media/preview_url", a.previewURL)
	rt.Authed("GET /_matrix/media/v3/preview_url", a.previewURL)

	// Admin endpoints (admin.go): administrators only.
	rt.Authed("GET "+adminPrefix+"/sticky", a.adminSticky)
}

// registerAccounts routes discovery, sessions, accounts, devices and profiles.
func (a *api) registerAccounts(rt *mxhttp.Router) {
	// Discovery.
	rt.Public("GET /_matrix/client/versions", a.versions)
	rt.Authed("GET "+v3+"/capabilities", a.capabilities)

	// Sessions and accounts.
	rt.Public("GET "+v3+"/login", a.loginFlows)
	rt.Public("POST "+v3+"/login", a.login)
	rt.Authed("POST "+v3+"/logout", a.logout)
	rt.Authed("POST "+v3+"/logout/all", a.logoutAll)
	rt.Authed("GET "+v3+"/account/whoami", a.whoami)
	rt.Public("POST "+v3+"/register", a.register)
	rt.Public("GET "+v3+"/register/available", a.registerAvailable)

	// Devices.
	rt.Authed("GET "+v3+"/devices", a.listDevices)
	rt.Authed("GET "+v3+"/devices/{deviceId}", a.getDevice)
	rt.Authed("PUT "+v3+"/devices/{deviceId}", a.updateDevice)
	rt.Authed("DELETE "+v3+"/devices/{deviceId}", a.deleteDevice)
	rt.Authed("POST "+v3+"/delete_devices", a.deleteDevices)

	// Profiles.
	rt.Public("GET "+v3+"/profile/{userId}", a.getProfile)
	rt.Public("GET "+v3+"/profile/{userId}/{keyName}", a.getProfileField)
	rt.Authed("PUT "+v3+"/profile/{userId}/{keyName}", a.putProfileField)
	rt.Authed("DELETE "+v3+"/profile/{userId}/{keyName}", a.deleteProfileField)
}

// registerRooms routes rooms, membership, events, state and aliases.
func (a *api) registerRooms(rt *mxhttp.Router) {
	// Rooms and membership.
	rt.Authed("POST "+v3+"/createRoom", a.createRoom)
	rt.Authed("GET "+v3+"/joined_rooms", a.joinedRooms)
	rt.Authed("POST "+v3+"/join/{roomIdOrAlias}", a.joinByIDOrAlias)
	rt.Authed("POST "+v3+"/rooms/{roomId}/join", a.joinRoom)
	rt.Authed("POST "+v3+"/rooms/{roomId}/invite", a.invite)
	rt.Authed("POST "+v3+"/rooms/{roomId}/leave", a.leave)
	rt.Authed("POST "+v3+"/rooms/{roomId}/forget", a.forget)
	rt.Authed("POST "+v3+"/rooms/{roomId}/kick", a.kick)
	rt.Authed("POST "+v3+"/rooms/{roomId}/ban", a.ban)
	rt.Authed("POST "+v3+"/rooms/{roomId}/unban", a.unban)

	// Events and state.
	rt.Authed("PUT "+v3+"/rooms/{roomId}/send/{eventType}/{txnId}", a.send)
	rt.Authed("PUT "+v3+"/rooms/{roomId}/redact/{eventId}/{txnId}", a.redact)
	rt.Authed("GET "+v3+"/rooms/{roomId}/event/{eventId}", a.getEvent)
	rt.Authed("GET "+v3+"/rooms/{roomId}/state", a.getState)
	// {stateKey...} also matches the empty key after a trailing slash and
	// keys holding slashes; the form without the slash is a separate route.
	rt.Authed("GET "+v3+"/rooms/{roomId}/state/{eventType}", a.getStateEvent)
	rt.Authed("GET "+v3+"/rooms/{roomId}/state/{eventType}/{stateKey...}", a.getStateEvent)
	rt.Authed("PUT "+v3+"/rooms/{roomId}/state/{eventType}", a.putStateEvent)
	rt.Authed("PUT "+v3+"/rooms/{roomId}/state/{eventType}/{stateKey...}", a.putStateEvent)
	rt.Authed("GET "+v3+"/rooms/{roomId}/members", a.members)
	rt.Authed("GET "+v3+"/rooms/{roomId}/joined_members", a.joinedMembers)

	// Room aliases.
	rt.Authed("PUT "+v3+"/directory/room/{roomAlias}", a.putAlias)
	rt.Public("GET "+v3+"/directory/room/{roomAlias}", a.getAlias)
	rt.Authed("DELETE "+v3+"/directory/room/{roomAlias}", a.deleteAlias)
	rt.Authed("GET "+v3+"/rooms/{roomId}/aliases", a.roomAliases)
}

// registerUserData routes the user directory, account data, tags, receipts,
// read markers, typing and presence.
func (a *api) registerUserData(rt *mxhttp.Router) {
	// User directory (userdir.go).
	rt.Authed("POST "+v3+"/user_directory/search", a.searchUserDirectory)

	// Account data and tags (accountdata.go).
	rt.Authed("GET "+v3+"/user/{userId}/account_data/{type}", a.getAccountData)
	rt.Authed("PUT "+v3+"/user/{userId}/account_data/{type}", a.putAccountData)
	rt.Authed("GET "+v3+"/user/{userId}/rooms/{roomId}/account_data/{type}", a.getAccountData)
	rt.Authed("PUT "+v3+"/user/{userId}/rooms/{roomId}/account_data/{type}", a.putAccountData)
	rt.Authed("GET "+v3+"/user/{userId}/rooms/{roomId}/tags", a.getTags)
	rt.Authed("PUT "+v3+"/user/{userId}/rooms/{roomId}/tags/{tag}", a.putTag)
	rt.Authed("DELETE "+v3+"/user/{userId}/rooms/{roomId}/tags/{tag}", a.deleteTag)

	// Receipts, read markers, typing, presence.
	rt.Authed("POST "+v3+"/rooms/{roomId}/receipt/{receiptType}/{eventId}", a.postReceipt)
	rt.Authed("POST "+v3+"/rooms/{roomId}/read_markers", a.postReadMarkers)
	rt.Authed("PUT "+v3+"/rooms/{roomId}/typing/{userId}", a.putTyping)
	rt.Authed("GET "+v3+"/presence/{userId}/status", a.getPresence)
	rt.Authed("PUT "+v3+"/presence/{userId}/status", a.putPresence)
}

// registerPush routes push rules (pushrules.go), pushers and notifications
// (pushers.go).
func (a *api) registerPush(rt *mxhttp.Router) {
	// Push rules (pushrules.go), pushers and notifications (pushers.go).
	rt.Authed("GET "+v3+"/pushrules/{$}", a.pushRules)
	rt.Authed("GET "+v3+"/pushrules/global/{$}", a.globalPushRules)
	rule := v3 + "/pushrules/global/{kind}/{ruleId}"
	rt.Authed("GET "+rule, a.getPushRule)
	rt.Authed("PUT "+rule, a.putPushRule)
	rt.Authed("DELETE "+rule, a.deletePushRule)
	rt.Authed("GET "+rule+"/enabled", a.getPushRuleEnabled)
	rt.Authed("PUT "+rule+"/enabled", a.putPushRuleEnabled)
	rt.Authed("GET "+rule+"/actions", a.getPushRuleActions)
	rt.Authed("PUT "+rule+"/actions", a.putPushRuleActions)
	rt.Authed("GET "+v3+"/pushers", a.getPushers)
	rt.Authed("POST "+v3+"/pushers/set", a.setPusher)
	rt.Authed("GET "+v3+"/notifications", a.getNotifications)
}

// registerE2EE routes end-to-end encryption: to-device messages, keys,
// cross-signing and server-side key backup.
func (a *api) registerE2EE(rt *mxhttp.Router) {
	// End-to-end encryption: to-device messages (todevice.go), keys and
	// cross-signing (keys.go). /keys/changes takes sync tokens: syncapi.
	rt.Authed("PUT "+v3+"/sendToDevice/{eventType}/{txnId}", a.sendToDevice)
	rt.Authed("POST "+v3+"/keys/upload", a.uploadKeys)
	rt.Authed("POST "+v3+"/keys/query", a.queryKeys)
	rt.Authed("POST "+v3+"/keys/claim", a.claimKeys)
	rt.Authed("POST "+v3+"/keys/device_signing/upload", a.uploadCrossSigningKeys)
	rt.Authed("POST "+v3+"/keys/signatures/upload", a.uploadSignatures)

	// Server-side key backup (roomkeys.go).
	rt.Authed("POST "+v3+"/room_keys/version", a.createKeyBackup)
	rt.Authed("GET "+v3+"/room_keys/version", a.getKeyBackup)
	rt.Authed("GET "+v3+"/room_keys/version/{version}", a.getKeyBackup)
	rt.Authed("PUT "+v3+"/room_keys/version/{version}", a.putKeyBackup)
	rt.Authed("DELETE "+v3+"/room_keys/version/{version}", a.deleteKeyBackup)
	for _, path := range []string{"/room_keys/keys", "/room_keys/keys/{roomId}", "/room_keys/keys/{roomId}/{sessionId}"} {
		rt.Authed("GET "+v3+path, a.getRoomKeys)
		rt.Authed("PUT "+v3+path, a.putRoomKeys)
		rt.Authed("DELETE "+v3+path, a.deleteRoomKeys)
	}
}
