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
// Every exported type uses only types gobind can bind (string, bool, int,
// int64, float64, []byte, error, pointers to structs of those, and
// interfaces); lists are JSON strings. No exported method lets a panic
// through: gomobile would turn it into the app's crash, so each method
// recovers and returns an error instead. gomobile cannot carry a
// context.Context, so the methods bound their own work with timeouts.
package mobile
