package syncapi

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/edgenode/edgenode/internal/mxhttp"
	"github.com/edgenode/edgenode/node"
)

// Timeline limits. The default is Synapse's (10), not the 20 of Dendrite's
// notes: clients that want more say so in their filter.
const (
	defaultTimelineLimit = 10
	maxTimelineLimit     = 100
	// maxSyncTimeout caps how long one long-poll may wait.
	maxSyncTimeout = 5 * time.Minute
)

// syncRequest is a parsed GET /sync.
type syncRequest struct {
	dev       node.Device
	since     StreamToken
	hasSince  bool
	fullState bool
	filter    *Filter
	timeout   time.Duration
	// stateAfterKey is the field MSC4222's state_after goes in ("" to send
	// the classic state section instead).
	stateAfterKey string
	setPresence   string

	// Filled while the response is built.
	ignored     map[string]bool // senders whose events are hidden
	joinedRooms []string        // rooms the user is joined to
	members     memberChanges   // for device_lists
}

func (a *api) parseSyncRequest(ctx context.Context, r *http.Request) (*syncRequest, error) {
	q := r.URL.Query()
	req := &syncRequest{dev: mxhttp.DeviceFrom(r), filter: &Filter{}}
	var err error
	if req.since, req.hasSince, err = queryToken(q, "since"); err != nil {
		return nil, err
	}
	switch q.Get("full_state") {
	case "", "false":
	case "true":
		req.fullState = true
	default:
		return nil, mxhttp.InvalidParam("full_state must be true or false")
	}
	if t := q.Get("timeout"); t != "" {
		ms, err := strconv.ParseInt(t, 10, 64)
		if err != nil || ms < 0 {
			return nil, mxhttp.InvalidParam("timeout must be a non-negative number of milliseconds")
		}
		// Capped before converting: a huge value would overflow Duration.
		req.timeout = time.Duration(min(ms, maxSyncTimeout.Milliseconds())) * time.Millisecond
	}
	switch {
	case isTrue(q.Get("use_state_after")):
		req.stateAfterKey = "state_after"
	case isTrue(q.Get("org.matrix.msc4222.use_state_after")):
		req.stateAfterKey = "org.matrix.msc4222.state_after"
	}
	switch p := q.Get("set_presence"); p {
	case "", "online", "offline", "unavailable":
		req.setPresence = p
	default:
		return nil, mxhttp.InvalidParam("set_presence must be online, offline or unavailable")
	}
	if f := q.Get("filter"); f != "" {
		if req.filter, err = a.loadFilter(ctx, req.dev.UserID, f); err != nil {
			return nil, err
		}
	}
	return req, nil
}

func isTrue(s string) bool { return s == "true" || s == "1" }

// loadFilter reads the filter parameter: inline JSON or a stored filter's ID.
func (a *api) loadFilter(ctx context.Context, userID, param string) (*Filter, error) {
	raw := []byte(param)
	if !strings.HasPrefix(strings.TrimSpace(param), "{") {
		stored, err := a.n.Filter(ctx, userID, param)
		if err != nil {
			return nil, mxhttp.InvalidParam("unknown filter %q", param)
		}
		raw = stored
	}
	return ParseFilter(raw)
}
