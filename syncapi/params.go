package syncapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/edgenode/edgenode/internal/mxhttp"
)

// Limits on the events one request returns.
const (
	defaultLimit = 10
	// maxLimit caps limit (as Synapse does) so one request is bounded work.
	maxLimit = 1000
)

// queryLimit reads the limit parameter: def when absent, at most maxLimit.
// Anything but a non-negative integer is 400 M_INVALID_PARAM.
func queryLimit(q url.Values, def int) (int, error) {
	s := q.Get("limit")
	if s == "" {
		return def, nil
	}
	l, err := strconv.Atoi(s)
	if err != nil || l < 0 {
		return 0, mxhttp.InvalidParam("limit must be a non-negative integer")
	}
	return min(l, maxLimit), nil
}

// queryFilter reads the filter parameter, an inline RoomEventFilter. It is
// nil when absent. The value is already URL-decoded once by the query
// parser; some clients encode it twice (Synapse decodes again), so a value
// that still looks percent-encoded is decoded once more.
func queryFilter(q url.Values) (*RoomEventFilter, error) {
	s := q.Get("filter")
	if s == "" {
		return nil, nil
	}
	if strings.HasPrefix(s, "%7B") || strings.HasPrefix(s, "%7b") {
		if d, err := url.QueryUnescape(s); err == nil {
			s = d
		}
	}
	if !json.Valid([]byte(s)) || !strings.HasPrefix(strings.TrimSpace(s), "{") {
		return nil, mxhttp.InvalidParam("filter must be a JSON object (a RoomEventFilter)")
	}
	f, err := ParseRoomEventFilter([]byte(s))
	if err != nil {
		// A query parameter of the wrong shape is a bad parameter, not a
		// bad body.
		var me *mxhttp.Error
		if errors.As(err, &me) {
			return nil, mxhttp.InvalidParam("%s", me.Message)
		}
		return nil, err
	}
	return f, nil
}

// queryToken reads a stream token parameter; ok is false when absent.
func queryToken(q url.Values, name string) (t StreamToken, ok bool, err error) {
	s := q.Get(name)
	if s == "" {
		return t, false, nil
	}
	t, err = ParseStreamToken(s)
	if err != nil {
		return t, false, fmt.Errorf("%s: %w", name, err) // wraps core.ErrInvalidParam
	}
	return t, true, nil
}

// queryLimitAndFilter reads limit and filter for /messages and /context; a
// filter's own limit further caps the limit parameter.
func queryLimitAndFilter(q url.Values) (int, *RoomEventFilter, error) {
	limit, err := queryLimit(q, defaultLimit)
	if err != nil {
		return 0, nil, err
	}
	filter, err := queryFilter(q)
	if err != nil {
		return 0, nil, err
	}
	if filter != nil && filter.Limit > 0 {
		limit = min(limit, filter.Limit)
	}
	return limit, filter, nil
}
