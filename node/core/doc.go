// Package core is the room core of a node: room input (building, signing
// and authorising events, state snapshots, state resolution and
// soft-failure), the room tables and caches, stream positions and the
// notifier, history visibility, and the commit that writes a batch of a
// room's events with the indexers registered on it (Indexer).
//
// Room events are input one at a time per room, so auth and state are always
// computed against a stable view; different rooms proceed in parallel and
// only the final commit, which assigns the stream position, is serialised.
//
// The core calls nothing above it. The concerns around it (package node and
// the packages beside this one under node/) import it: they register
// indexers (SetIndexers), stops (OnClose) and the federation side
// (SetFederation, for joins, invites and history that reach other servers),
// and embed *Node so its methods are theirs. It may import kv,
// internal/identity, internal/jsontext, internal/devprofile and
// gomatrixserverlib.
package core
