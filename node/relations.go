package node

import "github.com/edgenode/edgenode/node/relations"

// The relations concern's request and page types, named here so the client
// and sync APIs reach relations through node alone (the sync API may
// import no package that hands out the room core).
type (
	// RelationsQuery is a GET /relations request (relations.RelationsQuery).
	RelationsQuery = relations.RelationsQuery
	// RelationsPage is a page of relating events (relations.RelationsPage).
	RelationsPage = relations.RelationsPage
	// ThreadsQuery is a GET /threads request (relations.ThreadsQuery).
	ThreadsQuery = relations.ThreadsQuery
	// ThreadsPage is a page of thread roots (relations.ThreadsPage).
	ThreadsPage = relations.ThreadsPage
)

// Limits of the relation pages, for the HTTP edge.
const (
	// RelationsMaxLimit caps a /relations or /threads page.
	RelationsMaxLimit = relations.MaxLimit
	// RelationsRecurseDepth is how deep /relations' recurse goes.
	RelationsRecurseDepth = relations.RecurseDepth
)
