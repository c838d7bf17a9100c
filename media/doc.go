// Package media is the node's content repository: uploaded files, the
// cache of other servers' media, and thumbnails.
//
// Bytes live in files in the data directory, named by their SHA-256
// (content/<2 hex>/<62 hex>), never in Badger's value log; a Badger index
// (the node's own database, through kv) maps media IDs to a hash and the
// upload's metadata. A write streams into a temporary file while it is
// hashed, is fsynced, renamed into place and only then indexed, so an upload
// is visible only once complete, and a crash at any point leaves at most a
// file nothing references, which the sweep (at Open and periodically)
// removes. Every change of the content directory and of the byte counters
// happens under one lock, so the sweep, eviction and commits never race.
//
// The package knows nothing of HTTP or of the node: clientapi serves it,
// app opens it, and the federation side plugs in a RemoteFetcher.
package media
