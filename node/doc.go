// Package node is the homeserver core: accounts, devices and access tokens;
// room input (building, signing and authorising events, state snapshots,
// state resolution and soft-failure); stream positions and the notifier; and
// the wiring of all parts behind New, Start and Close.
//
// Room events are input one at a time per room, so auth and state are always
// computed against a stable view; different rooms proceed in parallel and
// only the final commit, which assigns the stream position, is serialised.
package node
