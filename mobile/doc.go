// Package mobile is edgenode's gomobile-bindable facade: what an Android or
// iOS app needs to run a homeserver inside itself. gobind turns it into a
// Java or Objective-C library:
//
//	gobind -lang=go,java -outdir OUT ./mobile
//
// An app creates a Node from a data directory and a JSON config, starts it,
// creates or logs in its user (getting an access token and device ID
// without an HTTP round trip), then talks to the node with any Matrix
// client library at BaseURL. Suspend and Resume follow the app into and out
// of the background.
//
// What else an app needs to live with the node:
//
//   - a HealthListener (SetHealthListener) hears when the node becomes
//     unhealthy (a listener failed, the disk is nearly full) and when it
//     stops by itself because it can no longer write its data directory;
//     IsRunning follows;
//   - on Android 11+, which forbids listing network interfaces, the app
//     passes its addresses with SetInterfaceAddrs and reports network
//     changes with NetworkChanged;
//   - an EventListener (SetEventListener) hears of each event for the
//     app's users, with whether it notifies them by their push rules, for
//     local notifications;
//   - RebindClient reopens the client API's listener on the same address
//     after iOS closed the app's sockets, without reopening the database;
//     the client API's port is kept in the data directory across restarts;
//   - Version is the build version.
//
// Listeners are called from a goroutine of the node's, never the app's main
// thread, one call at a time and never with a lock of the node held, so
// they may call back into Node.
//
// Every exported type uses only types gobind can bind (string, bool, int,
// int64, float64, []byte, error, pointers to structs of those, and
// interfaces); lists are JSON strings. No exported method lets a panic
// through: gomobile would turn it into the app's crash, so each method
// recovers and returns an error instead. gomobile cannot carry a
// context.Context, so the methods bound their own work with timeouts.
package mobile
