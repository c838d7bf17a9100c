package syncapi

import (
	"context"
	"net/http"
	"slices"

	"github.com/edgenode/edgenode/internal/mxhttp"
	"github.com/matrix-org/gomatrixserverlib/spec"
)

// ssResponse is the body of a sliding sync response.
type ssResponse struct {
	Pos        string                   `json:"pos"`
	Lists      map[string]ssListResult  `json:"lists"`
	Rooms      map[string]*ssRoomResult `json:"rooms"`
	Extensions *ssExtensions            `json:"extensions"`
}

// ssListResult is one list's part of a response.
type ssListResult struct {
	Count int `json:"count"`
}

// errUnknownPos is MSC4186's answer to a pos the server does not know (or
// no longer knows): the client starts a new connection.
func errUnknownPos() error {
	return mxhttp.Errorf(http.StatusBadRequest, "M_UNKNOWN_POS", "unknown or expired pos: start a new connection")
}

// slidingSync serves simplified sliding sync (MSC4186). A request with a
// pos continues that connection: the server sends only rooms the
// connection has not had or that changed since, and long-polls up to the
// timeout when nothing did. Without a pos a new connection starts.
func (a *api) slidingSync(w http.ResponseWriter, r *http.Request) error {
	req, err := parseSlidingSync(r)
	if err != nil {
		return err
	}
	// As with /sync, polling marks the user present unless told not to, and
	// keeps them so while the request is open.
	end, err := a.n.BeginSync(r.Context(), req.dev.UserID, req.SetPresence)
	if err != nil {
		return err
	}
	defer end()
	key := connKey{user: req.dev.UserID, device: req.dev.DeviceID, connID: req.ConnID}
	var c *conn
	if req.Pos == "" {
		c = a.ss.open(key)
	} else if c, _ = a.ss.lookup(key, req.Pos); c == nil {
		return errUnknownPos()
	}
	var base *connState
	if req.Pos != "" {
		var ok bool
		if base, ok = c.state(req.Pos); !ok {
			return errUnknownPos()
		}
	}
	l := a.n.Listen(req.dev.UserID)
	defer l.Close()
	ctx, cancel := context.WithTimeout(r.Context(), req.timeout)
	defer cancel()
	for {
		res, next, news, err := a.buildSlidingSync(r.Context(), req, base)
		if err != nil {
			return err
		}
		if news || base == nil || !l.Wait(ctx) {
			if err := r.Context().Err(); err != nil {
				return err // the client went away
			}
			c.store(next)
			res.Pos = a.ss.pos(c, next)
			end() // the offline timeout counts from the answer, which the client may have before a deferred end ran
			mxhttp.WriteJSON(w, http.StatusOK, res)
			return nil
		}
	}
}

// buildSlidingSync computes a response from the connection's state base
// (nil for a new connection) and the state that follows it, and says
// whether the response has news.
func (a *api) buildSlidingSync(ctx context.Context, req *ssRequest, base *connState) (*ssResponse, *connState, bool, error) {
	prev := base
	if prev == nil {
		prev = &connState{rooms: map[string]sentRoom{}}
	}
	next := prev.clone()
	for _, id := range req.UnsubscribeRooms {
		delete(next.subs, id)
	}
	for id, sc := range req.RoomSubscriptions {
		next.subs[id] = sc
	}
	if len(next.subs) > ssMaxSubscriptions {
		return nil, nil, false, mxhttp.InvalidParam("at most %d room subscriptions", ssMaxSubscriptions)
	}
	user := req.dev.UserID
	ignored, err := a.ignoredUsers(ctx, user)
	if err != nil {
		return nil, nil, false, err
	}
	rooms, err := a.roomList(ctx, user, prev)
	if err != nil {
		return nil, nil, false, err
	}
	// Read after the memberships: every membership listed is at or before
	// to, and whatever is committed later is the next response's.
	to := a.currentToken()
	facts, err := newRoomFacts(ctx, a, user)
	if err != nil {
		return nil, nil, false, err
	}
	// Per-room maps over the whole list are made only when a feature needs
	// them (the spaces filter, the sticky events extension): the rest of a
	// request touches only the windows' rooms.
	var joined map[string]bool
	if req.needsJoinedSet() {
		joined = make(map[string]bool, len(rooms))
		for _, r := range rooms {
			if r.m.Membership == spec.Join {
				joined[r.m.RoomID] = true
			}
		}
	}
	stickyOn := req.Extensions.Sticky.on()
	res := &ssResponse{Lists: map[string]ssListResult{}, Rooms: map[string]*ssRoomResult{}}
	news := false
	var jobs []*roomJob
	jobOf := map[string]*roomJob{}
	job := func(r ssRoom) *roomJob {
		if j := jobOf[r.m.RoomID]; j != nil {
			return j
		}
		j := &roomJob{r: r}
		jobOf[r.m.RoomID] = j
		jobs = append(jobs, j)
		return j
	}
	listed := map[string]bool{}
	names := make([]string, 0, len(req.Lists))
	for name := range req.Lists {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		l := req.Lists[name]
		filtered, err := facts.filterRooms(ctx, rooms, l.Filters, joined)
		if err != nil {
			return nil, nil, false, err
		}
		res.Lists[name] = ssListResult{Count: len(filtered)}
		if c, ok := prev.counts[name]; !ok || c != len(filtered) {
			news = true
		}
		next.counts[name] = len(filtered)
		if stickyOn {
			for _, r := range filtered {
				if r.m.Membership == spec.Join {
					listed[r.m.RoomID] = true
				}
			}
		}
		for _, r := range listWindow(filtered, l.ranges()) {
			j := job(r)
			j.cfg.add(l.ssRoomConfig)
			j.lists = append(j.lists, name)
		}
	}
	if len(next.subs) > 0 {
		// Rooms not in the list are not the user's to see: ignored.
		for _, r := range rooms {
			if sc, ok := next.subs[r.m.RoomID]; ok {
				job(r).cfg.add(sc)
				if r.m.Membership == spec.Join {
					listed[r.m.RoomID] = true
				}
			}
		}
	}

	type rendered struct {
		res  *ssRoomResult
		sent sentRoom
	}
	out := make([]rendered, len(jobs))
	err = forEach(ctx, len(jobs), syncWorkers(), func(ctx context.Context, i int) error {
		j := jobs[i]
		if err := a.fillMembership(ctx, user, &j.r); err != nil {
			return err
		}
		sent, had := prev.rooms[j.r.m.RoomID]
		liveAfter := uint64(noLive)
		switch {
		case had:
			liveAfter = sent.pos
		case base != nil:
			liveAfter = prev.token.Room
		}
		rr, s, err := a.renderRoom(ctx, req.dev, ignored, *j, sent, had, liveAfter, to, facts)
		out[i] = rendered{rr, s}
		return err
	})
	if err != nil {
		return nil, nil, false, err
	}
	ec := extContext{dev: req.dev, ignored: ignored, to: &to, res: res.Rooms, all: rooms}
	if base != nil {
		ec.prev = base
	}
	for i, o := range out {
		id := jobs[i].r.m.RoomID
		if _, had := prev.rooms[id]; had || o.res != nil {
			next.rooms[id] = o.sent
		}
		isJoined := jobs[i].r.m.Membership == spec.Join
		if o.res != nil {
			res.Rooms[id] = o.res
			news = true
			if o.res.Initial && isJoined {
				ec.initial = append(ec.initial, id)
			}
		}
		if isJoined {
			ec.rooms = append(ec.rooms, id)
		}
	}
	for id := range listed {
		ec.listed = append(ec.listed, id)
	}
	slices.Sort(ec.listed)
	ext, extNews, err := a.extensions(ctx, req, ec)
	if err != nil {
		return nil, nil, false, err
	}
	res.Extensions = ext
	next.token = to
	return res, next, news || extNews, nil
}

// needsJoinedSet says whether a list filters by spaces, which needs to
// know every room the user is joined to.
func (req *ssRequest) needsJoinedSet() bool {
	for _, l := range req.Lists {
		if l.Filters != nil && len(l.Filters.Spaces) > 0 {
			return true
		}
	}
	return false
}
