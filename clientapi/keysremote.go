package clientapi

import (
	"time"

	"github.com/edgenode/edgenode/internal/mxhttp"
)

// remoteWait is a keys request's "timeout" (milliseconds) as a duration;
// zero (absent or not positive) lets the node use its default, the spec's
// 10 seconds. The node caps long waits; the cap here only keeps the
// conversion from overflowing.
func remoteWait(ms int64) time.Duration {
	const maxMS = int64(time.Hour / time.Millisecond)
	if ms <= 0 {
		return 0
	}
	return time.Duration(min(ms, maxMS)) * time.Millisecond
}

// remoteFailures is the failures object of a keys answer: each server that
// could not be asked, with a Matrix error object saying why (the spec
// leaves the object's shape open; this is the shape clients already parse).
func remoteFailures(failures map[string]error) map[string]any {
	out := map[string]any{}
	for server, err := range failures {
		me := mxhttp.ToMatrix(err)
		out[server] = map[string]any{"status": me.Status, "errcode": me.Code, "error": me.Message}
	}
	return out
}
