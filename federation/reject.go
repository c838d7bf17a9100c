package federation

import (
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"

	"github.com/edgenode/edgenode/internal/mxhttp"
)

// fail answers r with err as a Matrix error. Requests refused for the
// caller's fault (4xx: not JSON, bad JSON, bad or missing signature, wrong
// peer, too large) are logged at debug with who sent them, so an operator
// can see a misbehaving peer; the per-peer limits bound how many such lines
// one peer can cause. 429s are left to the limiter, which logs them once per
// burst; server failures are logged by mxhttp.WriteError.
func (h *handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	me := mxhttp.ToMatrix(err)
	if me.Status >= 400 && me.Status < 500 && me.Status != http.StatusTooManyRequests && h.log.Enabled(r.Context(), slog.LevelDebug) {
		peer := ""
		if h.peerOf != nil {
			peer, _ = h.peerOf(r)
		}
		h.log.Debug("federation request refused", "peer", peer, "origin", fedRequest(r).origin,
			"method", r.Method, "path", r.URL.Path, "status", me.Status, "errcode", me.Code, "error", me.Message)
	}
	mxhttp.WriteError(w, r, h.log, err)
}

// recoverPanic turns a panic in a handler into 500 M_UNKNOWN and an error
// log with the stack, as the client API's router does: a bug reached by a
// peer's input costs that request, not the connection other requests share
// (net/http alone would drop it). Deferred first thing in ServeHTTP.
func (h *handler) recoverPanic(w http.ResponseWriter, r *http.Request) {
	v := recover()
	if v == nil {
		return
	}
	if v == http.ErrAbortHandler {
		panic(v)
	}
	peer := ""
	if h.peerOf != nil {
		peer, _ = h.peerOf(r)
	}
	h.log.Error("federation: panic in handler", "peer", peer, "method", r.Method, "path", r.URL.Path,
		"panic", fmt.Sprint(v), "stack", string(debug.Stack()))
	mxhttp.WriteError(w, r, nil, mxhttp.Errorf(http.StatusInternalServerError, "M_UNKNOWN", "internal server error"))
}
