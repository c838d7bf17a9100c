// Package userdir is the user directory: POST /user_directory/search.
//
// A searcher finds the users who share a joined room with them and the
// users joined to rooms that everyone may find (join rule public or history
// visibility world_readable, while a local user is still joined so the node
// still follows them): Synapse's default (search_all_users false) and the
// spec's minimum. Local and remote users are alike: every joined member of
// every room the node has.
//
// The index is kept by an indexer in the room commit (indexer.go), so it
// never lags the room: for each joined member of each room, the member's
// display name and avatar from their member event, and one key per word
// ("token") of their user ID and display name, keyed by (token, user,
// room). A search scans the keys under one word's prefix (a word-prefix
// match, as Synapse's full-text search does) and keeps those whose room
// the searcher may look into. Because tokens are per room, a per-room
// display name is only found, and only shown, through a room the searcher
// may see; a local user is shown with their global profile, as Synapse does.
//
// Every key is scoped to one room, so commits of different rooms never
// conflict on the index.
package userdir
