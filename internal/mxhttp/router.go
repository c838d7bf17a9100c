package mxhttp

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"

	"github.com/edgenode/edgenode/node"
)

// HandlerFunc is a handler that returns its error instead of writing it, so
// errors become Matrix errors in one place.
type HandlerFunc func(w http.ResponseWriter, r *http.Request) error

// Router routes Matrix client requests. Unknown paths get 404 M_UNRECOGNIZED,
// known paths with the wrong method 405 M_UNRECOGNIZED, OPTIONS gets CORS
// headers, and a panic is logged and answered with 500 M_UNKNOWN.
type Router struct {
	mux  *http.ServeMux
	node Node
	log  *slog.Logger
}

// NewRouter returns an empty router whose authenticated routes check tokens
// against n.
func NewRouter(n Node, log *slog.Logger) *Router {
	return &Router{mux: http.NewServeMux(), node: n, log: log}
}

// Public registers a route that needs no access token. pattern is a
// net/http pattern with a method, e.g. "GET /_matrix/client/versions".
// Requests other than GET and HEAD from web pages of origins the node does
// not allow are refused (origin.go).
func (rt *Router) Public(pattern string, h HandlerFunc) {
	rt.mux.Handle(pattern, rt.wrap(rt.fromAllowedOrigin(h)))
}

// Authed registers a route that needs a valid access token; the handler finds
// the device with DeviceFrom.
func (rt *Router) Authed(pattern string, h HandlerFunc) {
	rt.mux.Handle(pattern, rt.wrap(func(w http.ResponseWriter, r *http.Request) error {
		token, err := accessToken(r)
		if err != nil {
			return err
		}
		dev, err := rt.node.Authenticate(r.Context(), token)
		if err != nil {
			return err
		}
		return h(w, r.WithContext(context.WithValue(r.Context(), deviceKey{}, dev)))
	}))
}

func (rt *Router) wrap(h HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			if r.Context().Err() != nil {
				// The client went away (a long-poll dropped by an app going
				// to the background): nobody to answer, nothing to report.
				rt.log.Debug("client gone", "method", r.Method, "path", r.URL.Path)
				return
			}
			WriteError(w, r, rt.log, err)
		}
	})
}

type deviceKey struct{}

// DeviceFrom returns the authenticated device of a request on an Authed route.
func DeviceFrom(r *http.Request) node.Device {
	d, _ := r.Context().Value(deviceKey{}).(node.Device)
	return d
}

func accessToken(r *http.Request) (string, error) {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
			return "", Errorf(http.StatusUnauthorized, "M_MISSING_TOKEN", "malformed Authorization header")
		}
		return tok, nil
	}
	if tok := r.URL.Query().Get("access_token"); tok != "" {
		return tok, nil
	}
	return "", Errorf(http.StatusUnauthorized, "M_MISSING_TOKEN", "missing access token")
}

// ServeHTTP implements http.Handler.
func (rt *Router) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			rt.log.Error("panic in handler", "method", r.Method, "path", r.URL.Path, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			WriteError(w, r, nil, Errorf(http.StatusInternalServerError, "M_UNKNOWN", "internal server error"))
		}
	}()
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Access-Control-Allow-Methods", "GET, POST, PUT, DELETE, OPTIONS")
	h.Set("Access-Control-Allow-Headers", "Origin, X-Requested-With, Content-Type, Accept, Authorization")
	if r.Method == http.MethodOptions {
		w.WriteHeader(http.StatusOK)
		return
	}
	handler, pattern := rt.mux.Handler(r)
	if pattern == "" {
		// Let the mux decide between 404 and 405, then answer in Matrix form.
		rec := &statusRecorder{header: http.Header{}}
		handler.ServeHTTP(rec, r)
		if rec.status == http.StatusMethodNotAllowed {
			if allow := rec.header.Get("Allow"); allow != "" {
				h.Set("Allow", allow)
			}
			WriteError(w, r, nil, Errorf(http.StatusMethodNotAllowed, "M_UNRECOGNIZED", "method %s not allowed here", r.Method))
			return
		}
		WriteError(w, r, nil, Errorf(http.StatusNotFound, "M_UNRECOGNIZED", "unrecognized request"))
		return
	}
	rt.mux.ServeHTTP(w, r)
}

// statusRecorder captures only what the mux's fallback handlers write.
type statusRecorder struct {
	header http.Header
	status int
}

func (s *statusRecorder) Header() http.Header         { return s.header }
func (s *statusRecorder) Write(b []byte) (int, error) { return len(b), nil }
func (s *statusRecorder) WriteHeader(code int)        { s.status = code }
