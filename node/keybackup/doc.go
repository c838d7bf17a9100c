// Package keybackup is server-side key backup (the client-server API's
// /room_keys): per user, a few backup versions, each an algorithm and its
// auth_data, holding the megolm session keys clients upload, encrypted by
// them, so that a new device can restore them and read old messages.
//
// The server never sees the keys: session_data is opaque. What it does
// decide is which of two uploads of one session to keep (Better: verified
// first, then the lower first_message_index, then the lower
// forwarded_count), and it keeps a count of the keys and an etag that
// changes whenever they change, so clients can tell another device touched
// the backup.
//
// Versions are numbered per user, from 1, and a number is never reused;
// the current version is the highest one not deleted. Only the current
// version takes keys. Deleting a version removes its record at once and its
// keys in bounded batches afterwards (purge.go), resumed at start if a run
// was cut short.
//
// Everything a client can make the node store is bounded (limits.go): the
// versions kept per user, the keys and bytes per backup, the keys per
// request, and the size of each value.
package keybackup
