package federation

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"path"
	"runtime/debug"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/edgenode/edgenode/internal/identity"
	"github.com/edgenode/edgenode/internal/mxhttp"
	"github.com/edgenode/edgenode/media"
	"github.com/edgenode/edgenode/node/core"
	"github.com/matrix-org/gomatrixserverlib/fclient"
	"github.com/matrix-org/gomatrixserverlib/spec"
	"github.com/matrix-org/util"
	"github.com/sirupsen/logrus"
)

// MaxBodyBytes caps the body of every inbound federation request.
const MaxBodyBytes = 1 << 20

const (
	federationPrefix = "/_matrix/federation/"
	keyServerPath    = "/_matrix/key/v2/server"
	versionPath      = "/_matrix/federation/v1/version"
)

// NewHandler returns the inbound server-server API of n.
//
// peerOf reports the server name of the authenticated transport peer a
// request arrived from (for libp2p, the name derived from the remote peer's
// key); a nil peerOf, or one that reports !ok, makes every authenticated
// endpoint answer 403.
//
// Every request under /_matrix/federation/ must carry a valid X-Matrix
// Authorization signed by the key its origin's name is derived from, and
// addressed to n (if it names a destination): else 401 M_UNAUTHORIZED. Its
// origin must then equal peerOf(r): else 403 M_FORBIDDEN. Bodies over
// MaxBodyBytes are 413 M_TOO_LARGE. /_matrix/key/v2/server and
// /_matrix/federation/v1/version are served without authentication, as the
// spec says. Before any of that, each transport peer is held to the default
// Limits (limits.go; NewHandlerWithOptions sets others).
//
// The handler must see the request URI exactly as the sender signed it: mount
// it at the root of the server, never under a stripped prefix.
func NewHandler(n HandlerNode, peerOf func(*http.Request) (serverName string, ok bool)) http.Handler {
	return NewHandlerWithOptions(n, peerOf, HandlerOptions{})
}

// HandlerOptions tunes the handler NewHandlerWithOptions returns.
type HandlerOptions struct {
	// Limits bound each transport peer's requests (zero: the defaults).
	Limits Limits
	// Global bounds all peers' requests together, with priority for peers
	// that share a joined room with a local user (zero: the defaults).
	Global GlobalLimits
	// Media, if set, serves this node's media to other servers
	// (media/download and media/thumbnail; media.go). Nil: those routes
	// answer 404 M_UNRECOGNIZED.
	Media *media.Store
}

// NewHandlerWithOptions is NewHandler with options. Every request from a
// transport peer is first held to opts.Limits: over them it is 429
// M_LIMIT_EXCEEDED with retry_after_ms, before its body is read; so is
// every request once all peers together are over opts.Global.
func NewHandlerWithOptions(n HandlerNode, peerOf func(*http.Request) (serverName string, ok bool), opts HandlerOptions) http.Handler {
	log := n.Logger().With("component", "federation")
	h := &handler{
		n:      n,
		peerOf: peerOf,
		log:    log,
		liblog: libraryLogger(log),
		routes: http.NewServeMux(),
		limits: newPeerLimiter(opts.Limits, log, time.Now),
		global: newGlobalLimiter(opts.Global, log, time.Now, n),
	}
	h.routes.Handle("GET /_matrix/federation/v1/query/profile", h.wrap(h.queryProfile))
	h.routes.Handle("GET /_matrix/federation/v1/query/directory", h.wrap(h.queryDirectory))
	h.routes.Handle("GET /_matrix/federation/v1/user/devices/{userId}", h.wrap(h.userDevices))
	h.routes.Handle("POST /_matrix/federation/v1/user/keys/query", h.wrap(h.queryKeys))
	h.routes.Handle("POST /_matrix/federation/v1/user/keys/claim", h.wrap(h.claimKeys))
	h.routes.Handle("PUT /_matrix/federation/v1/send/{txnID}", h.wrap(h.send))
	h.routes.Handle("GET /_matrix/federation/v1/make_join/{roomId}/{userId}", h.wrap(h.makeJoin))
	h.routes.Handle("PUT /_matrix/federation/v2/send_join/{roomId}/{eventId}", h.wrap(h.sendJoin))
	h.routes.Handle("POST /_matrix/federation/v1/get_missing_events/{roomId}", h.wrap(h.getMissingEvents))
	h.routes.Handle("PUT /_matrix/federation/v2/invite/{roomId}/{eventId}", h.wrap(h.invite))
	h.routes.Handle("GET /_matrix/federation/v1/make_leave/{roomId}/{userId}", h.wrap(h.makeLeave))
	h.routes.Handle("PUT /_matrix/federation/v2/send_leave/{roomId}/{eventId}", h.wrap(h.sendLeave))
	h.routes.Handle("GET /_matrix/federation/v1/state/{roomId}", h.wrap(h.state))
	h.routes.Handle("GET /_matrix/federation/v1/state_ids/{roomId}", h.wrap(h.stateIDs))
	h.routes.Handle("GET /_matrix/federation/v1/event/{eventId}", h.wrap(h.event))
	h.routes.Handle("GET /_matrix/federation/v1/event_auth/{roomId}/{eventId}", h.wrap(h.eventAuth))
	h.routes.Handle("GET /_matrix/federation/v1/backfill/{roomId}", h.wrap(h.backfill))
	if opts.Media != nil {
		ms := newMediaServer(opts.Media)
		h.routes.Handle("GET /_matrix/federation/v1/media/download/{mediaId}", h.wrap(ms.download))
		h.routes.Handle("GET /_matrix/federation/v1/media/thumbnail/{mediaId}", h.wrap(ms.thumbnail))
	}
	h.routes.Handle("/", h.wrap(func(w http.ResponseWriter, r *http.Request) error {
		return unrecognized(r)
	}))
	return h
}

type handler struct {
	n      HandlerNode
	peerOf func(*http.Request) (string, bool)
	log    *slog.Logger
	liblog *logrus.Entry
	routes *http.ServeMux
	limits *peerLimiter
	global *globalLimiter
}

// request is what an authenticated handler may rely on.
type request struct {
	origin  spec.ServerName
	content []byte // the signed JSON body; nil when there was none
}

type requestKey struct{}

// fedRequest is the authenticated request stored in r's context.
func fedRequest(r *http.Request) request {
	fr, _ := r.Context().Value(requestKey{}).(request)
	return fr
}

func (h *handler) wrap(f func(http.ResponseWriter, *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := f(w, r); err != nil {
			h.fail(w, r, err)
		}
	})
}

func unauthorized(format string, args ...any) *mxhttp.Error {
	return mxhttp.Errorf(http.StatusUnauthorized, "M_UNAUTHORIZED", format, args...)
}

func unrecognized(r *http.Request) *mxhttp.Error {
	return mxhttp.Errorf(http.StatusNotFound, "M_UNRECOGNIZED", "unrecognized request: %s %s", r.Method, r.URL.Path)
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer h.recoverPanic(w, r)
	r = r.WithContext(util.ContextWithLogger(r.Context(), h.liblog))
	release, ok := h.admit(w, r)
	if !ok {
		return
	}
	defer release()
	switch {
	case r.URL.Path == keyServerPath || r.URL.Path == versionPath:
		// The spec serves these two without authentication.
		if r.Method != http.MethodGet {
			h.fail(w, r, mxhttp.Errorf(http.StatusMethodNotAllowed, "M_UNRECOGNIZED", "method %s not allowed", r.Method))
			return
		}
		if r.URL.Path == versionPath {
			h.wrap(h.version).ServeHTTP(w, r)
			return
		}
		h.keyServer(w, r)
	case strings.HasPrefix(r.URL.Path, federationPrefix):
		if path.Clean(r.URL.Path) != r.URL.Path {
			// ServeMux would answer with a redirect, which is no use to a peer.
			h.fail(w, r, unrecognized(r))
			return
		}
		fr, err := h.authenticate(r)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		h.routes.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestKey{}, fr)))
	default:
		h.fail(w, r, unrecognized(r))
	}
}

// authenticate checks r's X-Matrix signature and that its origin is the
// authenticated transport peer. It consumes the body.
func (h *handler) authenticate(r *http.Request) (request, error) {
	if r.ContentLength > MaxBodyBytes {
		return request{}, tooLarge()
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxBodyBytes+1))
	if err != nil {
		return request{}, mxhttp.BadJSON("reading body: %v", err)
	}
	if len(body) > MaxBodyBytes {
		return request{}, tooLarge()
	}
	origin, err := xMatrixOrigin(r)
	if err != nil {
		return request{}, err
	}
	if len(body) > 0 {
		// The library refuses these too, but as a bare 400.
		if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
			return request{}, mxhttp.NotJSON("Content-Type must be application/json")
		}
		if !json.Valid(body) {
			return request{}, mxhttp.NotJSON("body is not valid JSON")
		}
		if !utf8.Valid(body) {
			// The library refuses it too, but as a 401 that blames the
			// signature.
			return request{}, mxhttp.NotJSON("body is not valid UTF-8")
		}
	}

	r.Body = io.NopCloser(bytes.NewReader(body))
	fr, res := fclient.VerifyHTTPRequest(r, time.Now(), spec.ServerName(h.n.ServerName()), nil, identity.KeyRing{})
	if fr == nil {
		if res.Code >= 500 {
			return request{}, fmt.Errorf("federation: verifying request from %s: %v", origin, res.JSON)
		}
		return request{}, unauthorized("invalid X-Matrix authorization: %s", libMessage(res))
	}
	if fr.Origin() != origin {
		// Cannot happen (the library takes the origin from the same header),
		// but the peer check below must be against the verified origin.
		return request{}, unauthorized("origin mismatch")
	}
	peer, ok := "", false
	if h.peerOf != nil {
		peer, ok = h.peerOf(r)
	}
	if !ok || peer != string(fr.Origin()) {
		return request{}, mxhttp.Forbidden("request origin %s is not the authenticated peer", fr.Origin())
	}
	return request{origin: fr.Origin(), content: fr.Content()}, nil
}

// xMatrixOrigin returns the origin of r's X-Matrix Authorization and checks,
// before any signature work, that it is a key-derived server name.
func xMatrixOrigin(r *http.Request) (spec.ServerName, error) {
	for _, a := range r.Header.Values("Authorization") {
		scheme, origin, _, _, _ := fclient.ParseAuthorization(a)
		if scheme != "X-Matrix" {
			continue
		}
		if _, err := identity.PublicKeyFromServerName(string(origin)); err != nil {
			return "", unauthorized("X-Matrix origin: %v", err)
		}
		return origin, nil
	}
	return "", unauthorized("missing X-Matrix authorization")
}

// libMessage is the message of a util.MessageResponse.
func libMessage(res util.JSONResponse) string {
	var m struct {
		Message string `json:"message"`
	}
	b, _ := json.Marshal(res.JSON)
	if json.Unmarshal(b, &m) != nil || m.Message == "" {
		return fmt.Sprintf("status %d", res.Code)
	}
	return m.Message
}

func tooLarge() *mxhttp.Error {
	return mxhttp.Errorf(http.StatusRequestEntityTooLarge, "M_TOO_LARGE", "request body over %d bytes", MaxBodyBytes)
}

func (h *handler) keyServer(w http.ResponseWriter, r *http.Request) {
	b, err := serverKeys(h.n, time.Now())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

func (h *handler) version(w http.ResponseWriter, r *http.Request) error {
	var v fclient.Version
	v.Server.Name = "edgenode"
	v.Server.Version = buildVersion()
	mxhttp.WriteJSON(w, http.StatusOK, v)
	return nil
}

func buildVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// queryProfile is GET /_matrix/federation/v1/query/profile: a local user's
// profile, or one field of it.
func (h *handler) queryProfile(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	userID, field := q.Get("user_id"), q.Get("field")
	if userID == "" {
		return mxhttp.MissingParam("user_id is required")
	}
	switch field {
	case "", "displayname", "avatar_url":
	default:
		return mxhttp.InvalidParam("field must be displayname or avatar_url")
	}
	uid, err := spec.NewUserID(userID, true)
	if err != nil {
		return mxhttp.InvalidParam("user_id: %v", err)
	}
	if string(uid.Domain()) != h.n.ServerName() {
		return mxhttp.NotFound("%s is not a user of this server", userID)
	}
	h.log.Debug("profile query", "origin", fedRequest(r).origin, "user_id", userID, "field", field)
	p, err := h.n.Profile(r.Context(), userID)
	if errors.Is(err, core.ErrNotFound) {
		return mxhttp.NotFound("no such user %s", userID)
	}
	if err != nil {
		return err
	}
	out := map[string]string{}
	if (field == "" || field == "displayname") && p.DisplayName != "" {
		out["displayname"] = p.DisplayName
	}
	if (field == "" || field == "avatar_url") && p.AvatarURL != "" {
		out["avatar_url"] = p.AvatarURL
	}
	mxhttp.WriteJSON(w, http.StatusOK, out)
	return nil
}

// checkOriginUser requires userID to be a user of the request's origin, as
// make_join and make_leave do: a server may only ask for its own users.
func checkOriginUser(r *http.Request, userID string) error {
	origin := fedRequest(r).origin
	uid, err := spec.NewUserID(userID, true)
	if err != nil {
		return mxhttp.InvalidParam("user ID: %v", err)
	}
	if uid.Domain() != origin {
		return mxhttp.Forbidden("%s is not a user of %s", userID, origin)
	}
	return nil
}
