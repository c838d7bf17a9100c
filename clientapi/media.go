package clientapi

import (
	"context"
	"errors"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/edgenode/edgenode/internal/mxhttp"
	"github.com/edgenode/edgenode/media"
)

// Media routes' prefixes: the authenticated client-server ones (v1.11) and
// the older unauthenticated content repository's.
const (
	mediaV1      = "/_matrix/client/v1/media"
	mediaLegacy  = "/_matrix/media/v3"
	mediaCreate  = "/_matrix/media/v1/create"
	maxFileName  = 255
	maxMediaType = 255
	// maxWait bounds timeout_ms of a download of media not yet uploaded
	// (the spec: "SHOULD impose a maximum"); 20 s is its default.
	maxWait     = 60 * time.Second
	defaultWait = 20 * time.Second
)

// MediaOptions configures the media routes.
type MediaOptions struct {
	// Store is the media store.
	Store *media.Store
	// Remote fetches other servers' media into the store; nil fetches
	// nothing (their media not cached answers 404 M_NOT_FOUND).
	Remote media.RemoteFetcher
	// FreezeUnauthenticated freezes the deprecated unauthenticated
	// download and thumbnail endpoints as the spec (v1.11) suggests: media
	// uploaded while it is set are marked, and those endpoints answer 404
	// M_NOT_FOUND for it; media uploaded before stay reachable.
	FreezeUnauthenticated bool
	// Logger; nil is slog.Default().
	Logger *slog.Logger
}

// mediaAPI serves the content repository.
type mediaAPI struct {
	admin  *api // requireAdmin, for the admin route
	store  *media.Store
	remote media.RemoteFetcher
	freeze bool
	log    *slog.Logger
}

// RegisterMedia adds the content repository's routes to rt: uploads
// (direct and created-then-uploaded), authenticated downloads, thumbnails
// and the config, and the deprecated unauthenticated ones.
// n is the node, for the admin route's check.
func RegisterMedia(rt *mxhttp.Router, n Node, opts MediaOptions) {
	m := &mediaAPI{store: opts.Store, remote: opts.Remote, freeze: opts.FreezeUnauthenticated, log: opts.Logger}
	if m.log == nil {
		m.log = slog.Default()
	}
	m.log = m.log.With("component", "clientapi/media")
	m.admin = &api{n: n, log: m.log}

	rt.Authed("POST "+mediaLegacy+"/upload", m.upload)
	rt.Authed("POST "+mediaCreate, m.create)
	rt.Authed("PUT "+mediaLegacy+"/upload/{serverName}/{mediaId}", m.uploadTo)

	rt.Authed("GET "+mediaV1+"/config", m.config)
	rt.Authed("GET "+mediaV1+"/download/{serverName}/{mediaId}", m.download(true))
	rt.Authed("GET "+mediaV1+"/download/{serverName}/{mediaId}/{fileName}", m.download(true))
	rt.Authed("GET "+mediaV1+"/thumbnail/{serverName}/{mediaId}", m.thumbnail(true))

	// Deprecated since v1.11, kept for older clients (see FreezeUnauthenticated).
	rt.Authed("GET "+mediaLegacy+"/config", m.config)
	rt.Public("GET "+mediaLegacy+"/download/{serverName}/{mediaId}", m.download(false))
	rt.Public("GET "+mediaLegacy+"/download/{serverName}/{mediaId}/{fileName}", m.download(false))
	rt.Public("GET "+mediaLegacy+"/thumbnail/{serverName}/{mediaId}", m.thumbnail(false))

	// Admin (admin.go): the store's disk use.
	rt.Authed("GET "+adminPrefix+"/media", m.adminUsage)
}

// adminUsage is GET .../admin/edgenode/media: the media store's disk use
// (media.Usage: local uploads, the remote cache, thumbnails, distinct
// files on disk).
func (m *mediaAPI) adminUsage(w http.ResponseWriter, r *http.Request) error {
	if err := m.admin.requireAdmin(r); err != nil {
		return err
	}
	u, err := m.store.Usage(r.Context())
	if err != nil {
		return err
	}
	mxhttp.WriteJSON(w, http.StatusOK, u)
	return nil
}

// config is GET .../config.
func (m *mediaAPI) config(w http.ResponseWriter, r *http.Request) error {
	mxhttp.WriteJSON(w, http.StatusOK, map[string]any{"m.upload.size": m.store.Limits().MaxUploadBytes})
	return nil
}

// uploadMeta reads an upload's metadata from its headers and query, and
// refuses a Content-Length over the limit before a byte of the body is
// read.
func (m *mediaAPI) uploadMeta(r *http.Request) (media.Upload, error) {
	up := media.Upload{
		Uploader:    mxhttp.DeviceFrom(r).UserID,
		ContentType: r.Header.Get("Content-Type"),
		FileName:    r.URL.Query().Get("filename"),
		Restricted:  m.freeze,
		Size:        r.ContentLength,
	}
	if up.ContentType != "" {
		if len(up.ContentType) > maxMediaType {
			return up, mxhttp.InvalidParam("Content-Type too long")
		}
		if _, _, err := mime.ParseMediaType(up.ContentType); err != nil {
			return up, mxhttp.InvalidParam("Content-Type: %v", err)
		}
	}
	if len(up.FileName) > maxFileName || !utf8.ValidString(up.FileName) || strings.ContainsFunc(up.FileName, isControl) {
		return up, mxhttp.InvalidParam("filename must be at most %d bytes of printable UTF-8", maxFileName)
	}
	if limit := m.store.Limits().MaxUploadBytes; r.ContentLength > limit {
		return up, tooLarge("the upload limit is %d bytes", limit)
	}
	return up, nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// upload is POST /_matrix/media/v3/upload.
func (m *mediaAPI) upload(w http.ResponseWriter, r *http.Request) error {
	up, err := m.uploadMeta(r)
	if err != nil {
		return err
	}
	// The store stops reading one byte past its limit too; MaxBytesReader
	// also tells the server to close the connection rather than drain
	// what the client still sends.
	body := http.MaxBytesReader(w, r.Body, m.store.Limits().MaxUploadBytes)
	rec, err := m.store.Put(r.Context(), up, body)
	if err != nil {
		return mediaError(err, true)
	}
	mxhttp.WriteJSON(w, http.StatusOK, map[string]any{"content_uri": "mxc://" + rec.Origin + "/" + rec.ID})
	return nil
}

// create is POST /_matrix/media/v1/create.
func (m *mediaAPI) create(w http.ResponseWriter, r *http.Request) error {
	id, expires, err := m.store.Create(r.Context(), mxhttp.DeviceFrom(r).UserID)
	if err != nil {
		return mediaError(err, true)
	}
	mxhttp.WriteJSON(w, http.StatusOK, map[string]any{
		"content_uri":       "mxc://" + m.store.ServerName() + "/" + id,
		"unused_expires_at": expires.UnixMilli(),
	})
	return nil
}

// uploadTo is PUT /_matrix/media/v3/upload/{serverName}/{mediaId}.
func (m *mediaAPI) uploadTo(w http.ResponseWriter, r *http.Request) error {
	server, id := r.PathValue("serverName"), r.PathValue("mediaId")
	if !media.ValidServerName(server) || !media.ValidID(id) {
		return mxhttp.InvalidParam("malformed server name or media ID")
	}
	if !m.store.Local(server) {
		return mxhttp.NotFound("media IDs of other servers cannot be uploaded to")
	}
	up, err := m.uploadMeta(r)
	if err != nil {
		return err
	}
	body := http.MaxBytesReader(w, r.Body, m.store.Limits().MaxUploadBytes)
	if _, err := m.store.PutPending(r.Context(), id, up, body); err != nil {
		return mediaError(err, true)
	}
	mxhttp.WriteJSON(w, http.StatusOK, map[string]any{})
	return nil
}

// open finds serverName/mediaId for a download or a thumbnail: local
// media (waiting up to timeout_ms for one created and not yet uploaded),
// cached remote media, or remote media fetched through m.remote.
func (m *mediaAPI) open(r *http.Request, authed bool) (*media.Content, error) {
	server, id := r.PathValue("serverName"), r.PathValue("mediaId")
	if !media.ValidServerName(server) || !media.ValidID(id) {
		return nil, mxhttp.InvalidParam("malformed server name or media ID")
	}
	ctx := r.Context()
	c, err := m.store.Get(ctx, server, id)
	if errors.Is(err, media.ErrNotYetUploaded) {
		wait := defaultWait
		if v := r.URL.Query().Get("timeout_ms"); v != "" {
			ms, perr := strconv.ParseInt(v, 10, 64)
			if perr != nil || ms < 0 {
				return nil, mxhttp.InvalidParam("timeout_ms must be a non-negative integer")
			}
			wait = min(time.Duration(ms)*time.Millisecond, maxWait)
		}
		wctx, cancel := context.WithTimeout(ctx, wait)
		werr := m.store.WaitUploaded(wctx, id)
		cancel()
		if werr != nil && ctx.Err() == nil && errors.Is(werr, context.DeadlineExceeded) {
			return nil, mxhttp.Errorf(http.StatusGatewayTimeout, "M_NOT_YET_UPLOADED", "content has not yet been uploaded")
		}
		c, err = m.store.Get(ctx, server, id)
	}
	// Frozen unauthenticated endpoints fetch nothing: what they fetched
	// now would be media from after the freeze.
	fetch := m.remote != nil && (authed || !m.freeze) && r.URL.Query().Get("allow_remote") != "false"
	if errors.Is(err, media.ErrNotFound) && !m.store.Local(server) && fetch {
		c, err = m.remote.Fetch(ctx, server, id)
	}
	if err != nil {
		return nil, mediaError(err, m.store.Local(server))
	}
	if !authed && c.Restricted {
		c.Close()
		return nil, mxhttp.NotFound("this media is served only by the authenticated endpoints (/_matrix/client/v1/media)")
	}
	return c, nil
}

// download is GET .../download/{serverName}/{mediaId}[/{fileName}].
func (m *mediaAPI) download(authed bool) mxhttp.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		c, err := m.open(r, authed)
		if err != nil {
			return err
		}
		defer c.Close()
		name := c.FileName
		if n := r.PathValue("fileName"); n != "" && len(n) <= maxFileName && utf8.ValidString(n) && !strings.ContainsFunc(n, isControl) {
			name = n
		}
		serveContent(w, r, c, c.ContentType, name, false)
		return nil
	}
}

// thumbnail is GET .../thumbnail/{serverName}/{mediaId}.
func (m *mediaAPI) thumbnail(authed bool) mxhttp.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		q := r.URL.Query()
		spec := media.ThumbnailSpec{Method: q.Get("method"), Animated: q.Get("animated") == "true"}
		if spec.Method == "" {
			spec.Method = media.MethodScale
		}
		if spec.Method != media.MethodScale && spec.Method != media.MethodCrop {
			return mxhttp.InvalidParam("method must be scale or crop")
		}
		if a := q.Get("animated"); a != "" && a != "true" && a != "false" {
			return mxhttp.InvalidParam("animated must be true or false")
		}
		var err error
		if spec.Width, err = positiveParam(q.Get("width"), "width"); err != nil {
			return err
		}
		if spec.Height, err = positiveParam(q.Get("height"), "height"); err != nil {
			return err
		}
		src, err := m.open(r, authed)
		if err != nil {
			return err
		}
		src.Close() // Thumbnail opens what it needs; this checked access
		c, err := m.store.Thumbnail(r.Context(), src.Origin, src.ID, spec)
		if err != nil {
			return mediaError(err, m.store.Local(src.Origin))
		}
		defer c.Close()
		ext := ".png"
		if c.ContentType == "image/jpeg" {
			ext = ".jpg"
		}
		serveContent(w, r, c, c.ContentType, "thumbnail"+ext, true)
		return nil
	}
}

func positiveParam(v, name string) (int, error) {
	if v == "" {
		return 0, mxhttp.MissingParam("%s is required", name)
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		return 0, mxhttp.InvalidParam("%s must be a positive integer", name)
	}
	return n, nil
}

// tooLarge is 413 M_TOO_LARGE.
func tooLarge(format string, args ...any) *mxhttp.Error {
	return mxhttp.Errorf(http.StatusRequestEntityTooLarge, "M_TOO_LARGE", format, args...)
}

// mediaError turns a media store error into the spec's Matrix error. local
// says the media is this server's (too large to thumbnail is then 413,
// else 502).
func mediaError(err error, local bool) error {
	var maxBytes *http.MaxBytesError
	switch {
	case errors.As(err, &maxBytes), errors.Is(err, media.ErrTooLarge):
		if !local {
			return mxhttp.Errorf(http.StatusBadGateway, "M_TOO_LARGE", "the remote content is too large")
		}
		return tooLarge("%v", err)
	case errors.Is(err, media.ErrQuota):
		return mxhttp.Errorf(http.StatusForbidden, "M_RESOURCE_LIMIT_EXCEEDED", "%v", err)
	case errors.Is(err, media.ErrTooManyPixels):
		if !local {
			return mxhttp.Errorf(http.StatusBadGateway, "M_TOO_LARGE", "the remote content is too large to thumbnail")
		}
		return tooLarge("content is too large to thumbnail")
	case errors.Is(err, media.ErrCannotThumbnail):
		return mxhttp.Errorf(http.StatusBadRequest, "M_UNKNOWN", "cannot generate thumbnails for the requested content")
	case errors.Is(err, media.ErrNotFound):
		return mxhttp.NotFound("media not found")
	case errors.Is(err, media.ErrInvalidID):
		return mxhttp.InvalidParam("malformed server name or media ID")
	case errors.Is(err, media.ErrForbidden):
		return mxhttp.Forbidden("this media ID was created by another user")
	case errors.Is(err, media.ErrCannotOverwrite):
		return mxhttp.Errorf(http.StatusConflict, "M_CANNOT_OVERWRITE_MEDIA", "media already uploaded")
	case errors.Is(err, media.ErrPendingLimit):
		return mxhttp.LimitExceeded(time.Minute, "too many pending uploads; upload or let some expire first")
	case errors.Is(err, media.ErrNotYetUploaded):
		return mxhttp.Errorf(http.StatusGatewayTimeout, "M_NOT_YET_UPLOADED", "content has not yet been uploaded")
	}
	return err
}
