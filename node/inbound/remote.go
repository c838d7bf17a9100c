package inbound

// Remote is how the node reaches other servers: joins and leaves of rooms it
// does not have, invites of their users, queries about their aliases,
// profiles and keys, and the events and history inbound PDUs and /messages
// are missing. The app provides it from its federation client, once, with
// SetRemote; each part's doc says what its errors wrap.
type Remote interface {
	RemoteJoiner
	RemoteLeaver
	RemoteInviter
	RemoteQuerier
	EventFetcher
}

// SetRemote installs r as the node's way to other servers; nil (the state
// after New) turns all of it off: joins of unknown rooms are ErrNotFound,
// invites of other servers' users ErrForbidden, rejecting an invite to a
// room the node does not have stays local, aliases and profiles of other
// servers are ErrNotFound and their keys core.ErrRemoteUnavailable, inbound
// PDUs with unknown prev events are refused with ErrMissingEvents, and
// /messages stops at the node's first event. The remote is set after New because the federation client is built
// on the node.
func (n *Inbound) SetRemote(r Remote) { n.remote.set(r) }

// The parts of the remote, each nil when none is set (a nil Remote converts
// to a nil part).
func (n *Inbound) remoteJoiner() RemoteJoiner   { return n.remote.get() }
func (n *Inbound) remoteLeaver() RemoteLeaver   { return n.remote.get() }
func (n *Inbound) remoteInviter() RemoteInviter { return n.remote.get() }
func (n *Inbound) remoteQuerier() RemoteQuerier { return n.remote.get() }
func (n *Inbound) eventFetcher() EventFetcher   { return n.remote.get() }

// Remote is what SetRemote installed (nil before): a test that sets one part
// of it keeps the others.
func (n *Inbound) Remote() Remote { return n.remote.get() }
