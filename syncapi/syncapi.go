package syncapi

import (
	"github.com/edgenode/edgenode/internal/mxhttp"
)

// api holds what the handlers need; it is built once per router.
type api struct {
	n Reader
	// budget is how many events beyond the limit one page may look at (see
	// paginate); a field so tests can make it small.
	budget int
	// ss holds sliding sync connections (MSC4186), in memory.
	ss *connStore
}

// Register adds the sync API's routes to rt, served from n (a *node.Node).
func Register(rt *mxhttp.Router, n Reader) {
	a := &api{n: n, budget: scanBudget, ss: newConnStore()}
	const v3 = "/_matrix/client/v3"
	rt.Authed("GET "+v3+"/sync", a.sync)
	rt.Authed("GET "+v3+"/keys/changes", a.keysChanges)
	rt.Authed("POST /_matrix/client/unstable/org.matrix.simplified_msc3575/sync", a.slidingSync)
	rt.Authed("POST /_matrix/client/v4/sync", a.slidingSync)
	rt.Authed("GET "+v3+"/rooms/{roomId}/messages", a.messages)
	rt.Authed("GET "+v3+"/rooms/{roomId}/context/{eventId}", a.eventContext)
	const v1 = "/_matrix/client/v1"
	rt.Authed("GET "+v1+"/rooms/{roomId}/relations/{eventId}", a.relations)
	rt.Authed("GET "+v1+"/rooms/{roomId}/relations/{eventId}/{relType}", a.relations)
	rt.Authed("GET "+v1+"/rooms/{roomId}/relations/{eventId}/{relType}/{eventType}", a.relations)
	rt.Authed("GET "+v1+"/rooms/{roomId}/threads", a.threads)
	rt.Authed("POST "+v3+"/search", a.search)
	rt.Authed("POST "+v3+"/user/{userId}/filter", a.postFilter)
	rt.Authed("GET "+v3+"/user/{userId}/filter/{filterId}", a.getFilter)
}
