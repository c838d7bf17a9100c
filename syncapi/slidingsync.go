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
	prev, next, err := nextConnState(req, base)
	if err != nil {
		return nil, nil, false, err
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
	res := &ssResponse{Lists: map[string]ssListResult{}, Rooms: map[string]*ssRoomResult{}}
	js := newRoomJobs()
	news, err := js.addLists(ctx, req, rooms, facts, prev, next, res)
	if err != nil {
		return nil, nil, false, err
	}
	js.addSubscriptions(rooms, next.subs)
	out, err := a.renderJobs(ctx, req, ignored, js.jobs, prev, base != nil, to, facts)
	if err != nil {
		return nil, nil, false, err
	}
	ec := extContext{dev: req.dev, ignored: ignored, to: &to, res: res.Rooms, all: rooms, prev: base}
	if collectRooms(out, js.jobs, prev, next, res, &ec) {
		news = true
	}
	ec.listed = js.listedIDs()
	ext, extNews, err := a.extensions(ctx, req, ec)
	if err != nil {
		return nil, nil, false, err
	}
	res.Extensions = ext
	next.token = to
	return res, next, news || extNews, nil
}

// nextConnState returns the state a response builds on (prev: base, or an
// empty one for a new connection) and a copy of it to become the next
// state, with the request's room subscriptions and unsubscriptions applied.
func nextConnState(req *ssRequest, base *connState) (prev, next *connState, err error) {
	prev = base
	if prev == nil {
		prev = &connState{rooms: map[string]sentRoom{}}
	}
	next = prev.clone()
	for _, id := range req.UnsubscribeRooms {
		delete(next.subs, id)
	}
	for id, sc := range req.RoomSubscriptions {
		next.subs[id] = sc
	}
	if len(next.subs) > ssMaxSubscriptions {
		return nil, nil, mxhttp.InvalidParam("at most %d room subscriptions", ssMaxSubscriptions)
	}
	return prev, next, nil
}

// roomJobs collects the rooms a response may include, each once and in the
// order first met, with how each is asked for; and the joined rooms the
// lists (whole, ranges ignored, when the sticky events extension is on)
// and the subscriptions match.
type roomJobs struct {
	jobs   []*roomJob
	of     map[string]*roomJob
	listed map[string]bool
}

// newRoomJobs returns an empty collection.
func newRoomJobs() *roomJobs {
	return &roomJobs{of: map[string]*roomJob{}, listed: map[string]bool{}}
}

// job returns r's job, adding it when r is new.
func (js *roomJobs) job(r ssRoom) *roomJob {
	if j := js.of[r.m.RoomID]; j != nil {
		return j
	}
	j := &roomJob{r: r}
	js.of[r.m.RoomID] = j
	js.jobs = append(js.jobs, j)
	return j
}

// addLists filters rooms for each of the request's lists, in name order,
// sets the lists' counts in res and next, and adds the rooms in the lists'
// windows. It says whether a count changed since prev.
func (js *roomJobs) addLists(ctx context.Context, req *ssRequest, rooms []ssRoom, facts *roomFacts, prev, next *connState, res *ssResponse) (bool, error) {
	joined := joinedSet(req, rooms)
	stickyOn := req.Extensions.Sticky.on()
	news := false
	names := make([]string, 0, len(req.Lists))
	for name := range req.Lists {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		l := req.Lists[name]
		filtered, err := facts.filterRooms(ctx, rooms, l.Filters, joined)
		if err != nil {
			return false, err
		}
		res.Lists[name] = ssListResult{Count: len(filtered)}
		if c, ok := prev.counts[name]; !ok || c != len(filtered) {
			news = true
		}
		next.counts[name] = len(filtered)
		if stickyOn {
			for _, r := range filtered {
				if r.m.Membership == spec.Join {
					js.listed[r.m.RoomID] = true
				}
			}
		}
		for _, r := range listWindow(filtered, l.ranges()) {
			j := js.job(r)
			j.cfg.add(l.ssRoomConfig)
			j.lists = append(j.lists, name)
		}
	}
	return news, nil
}

// joinedSet is the set of rooms the user is joined to, made only when a
// list filters by spaces: the rest of a request touches only the windows'
// rooms, so per-room maps over the whole list are not made for nothing.
func joinedSet(req *ssRequest, rooms []ssRoom) map[string]bool {
	if !req.needsJoinedSet() {
		return nil
	}
	joined := make(map[string]bool, len(rooms))
	for _, r := range rooms {
		if r.m.Membership == spec.Join {
			joined[r.m.RoomID] = true
		}
	}
	return joined
}

// addSubscriptions adds the subscribed rooms. Rooms not in the user's list
// are not theirs to see: those subscriptions are ignored.
func (js *roomJobs) addSubscriptions(rooms []ssRoom, subs map[string]ssRoomConfig) {
	if len(subs) == 0 {
		return
	}
	for _, r := range rooms {
		if sc, ok := subs[r.m.RoomID]; ok {
			js.job(r).cfg.add(sc)
			if r.m.Membership == spec.Join {
				js.listed[r.m.RoomID] = true
			}
		}
	}
}

// listedIDs are the listed rooms' IDs, sorted.
func (js *roomJobs) listedIDs() []string {
	var ids []string
	for id := range js.listed {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// renderedRoom is a room's render: its result (nil when nothing to send)
// and the connection's record of it after this response.
type renderedRoom struct {
	res  *ssRoomResult
	sent sentRoom
}

// renderJobs reads each job's membership and renders the room, on up to
// syncWorkers goroutines. continued says the connection had a response
// before, whose position makes events after it live in rooms new to it.
func (a *api) renderJobs(ctx context.Context, req *ssRequest, ignored map[string]bool, jobs []*roomJob, prev *connState, continued bool, to StreamToken, facts *roomFacts) ([]renderedRoom, error) {
	user := req.dev.UserID
	out := make([]renderedRoom, len(jobs))
	err := forEach(ctx, len(jobs), syncWorkers(), func(ctx context.Context, i int) error {
		j := jobs[i]
		if err := a.fillMembership(ctx, user, &j.r); err != nil {
			return err
		}
		sent, had := prev.rooms[j.r.m.RoomID]
		liveAfter := uint64(noLive)
		switch {
		case had:
			liveAfter = sent.pos
		case continued:
			liveAfter = prev.token.Room
		}
		rr, s, err := a.renderRoom(ctx, req.dev, ignored, *j, sent, had, liveAfter, to, facts)
		out[i] = renderedRoom{rr, s}
		return err
	})
	return out, err
}

// collectRooms puts the rendered rooms into res and next, and the joined
// ones into ec (those sent whole also as initial). It says whether any room
// has something to send.
func collectRooms(out []renderedRoom, jobs []*roomJob, prev, next *connState, res *ssResponse, ec *extContext) bool {
	news := false
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
	return news
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
