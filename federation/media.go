package federation

import (
	"context"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"strconv"
	"time"

	"github.com/edgenode/edgenode/internal/mxhttp"
	"github.com/edgenode/edgenode/media"
)

// The serving side of the federation content repository (v1.11): other
// servers download this node's own media, never its cache of a third
// server's, as multipart/mixed answers of two parts: the metadata ({}) and
// the bytes. Only authenticated peers reach it (the handler's X-Matrix
// check and peer binding), each held to the per-peer limits every
// federation route has; on top of those, maxMediaStreams bounds the
// downloads served at once, all peers together, so a few slow readers
// cannot hold every file descriptor and the uplink.

// maxMediaStreams bounds the federation media answers being written at once.
const maxMediaStreams = 16

// Bounds of timeout_ms for media created but not yet uploaded (the spec's
// default, and its "SHOULD impose a maximum").
const (
	mediaDefaultWait = 20 * time.Second
	mediaMaxWait     = 60 * time.Second
)

// MediaPartLength is the header of the multipart answer's second part that
// announces the content's length. multipart parts carry no Content-Length
// of their own in the spec; the fetching side (mediaclient.go) reads it, if
// present, as the most the part may hold.
const MediaPartLength = "Content-Length"

// mediaServer serves the two media routes.
type mediaServer struct {
	store   *media.Store
	streams chan struct{}
}

func newMediaServer(st *media.Store) *mediaServer {
	return &mediaServer{store: st, streams: make(chan struct{}, maxMediaStreams)}
}

// acquire takes a stream slot, or answers 429.
func (m *mediaServer) acquire() (func(), error) {
	select {
	case m.streams <- struct{}{}:
		return func() { <-m.streams }, nil
	default:
		return nil, mxhttp.LimitExceeded(time.Second, "too many media downloads at once")
	}
}

// open finds the local media item of the request's mediaId, waiting up to
// timeout_ms for one created and not yet uploaded.
func (m *mediaServer) open(r *http.Request) (*media.Content, error) {
	id := r.PathValue("mediaId")
	if !media.ValidID(id) {
		return nil, mxhttp.InvalidParam("malformed media ID")
	}
	ctx, origin := r.Context(), m.store.ServerName()
	c, err := m.store.Get(ctx, origin, id)
	if errors.Is(err, media.ErrNotYetUploaded) {
		wait := mediaDefaultWait
		if v := r.URL.Query().Get("timeout_ms"); v != "" {
			ms, perr := strconv.ParseInt(v, 10, 64)
			if perr != nil || ms < 0 {
				return nil, mxhttp.InvalidParam("timeout_ms must be a non-negative integer")
			}
			wait = min(time.Duration(ms)*time.Millisecond, mediaMaxWait)
		}
		wctx, cancel := context.WithTimeout(ctx, wait)
		_ = m.store.WaitUploaded(wctx, id) // then Get says what came of it
		cancel()
		c, err = m.store.Get(ctx, origin, id)
	}
	if err != nil {
		return nil, mediaError(err)
	}
	return c, nil
}

// download is GET /_matrix/federation/v1/media/download/{mediaId}.
func (m *mediaServer) download(w http.ResponseWriter, r *http.Request) error {
	// A slot is taken once the item is there: waiting for a pending
	// upload holds none.
	c, err := m.open(r)
	if err != nil {
		return err
	}
	defer c.Close()
	release, err := m.acquire()
	if err != nil {
		return err
	}
	defer release()
	writeMultipart(w, c, c.ContentType, c.FileName, c.Size)
	return nil
}

// thumbnail is GET /_matrix/federation/v1/media/thumbnail/{mediaId}.
func (m *mediaServer) thumbnail(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	spec := media.ThumbnailSpec{Method: q.Get("method"), Animated: q.Get("animated") == "true"}
	if spec.Method == "" {
		spec.Method = media.MethodScale
	}
	if spec.Method != media.MethodScale && spec.Method != media.MethodCrop {
		return mxhttp.InvalidParam("method must be scale or crop")
	}
	var err error
	if spec.Width, err = positiveInt(q.Get("width"), "width"); err != nil {
		return err
	}
	if spec.Height, err = positiveInt(q.Get("height"), "height"); err != nil {
		return err
	}
	src, err := m.open(r)
	if err != nil {
		return err
	}
	src.Close() // Thumbnail opens what it needs; this waited for and checked it
	release, err := m.acquire()
	if err != nil {
		return err
	}
	defer release()
	c, err := m.store.Thumbnail(r.Context(), src.Origin, src.ID, spec)
	if err != nil {
		return mediaError(err)
	}
	defer c.Close()
	writeMultipart(w, c, c.ContentType, "", c.Size)
	return nil
}

func positiveInt(v, name string) (int, error) {
	if v == "" {
		return 0, mxhttp.MissingParam("%s is required", name)
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		return 0, mxhttp.InvalidParam("%s must be a positive integer", name)
	}
	return n, nil
}

// mediaError turns a store error into the spec's answer for local media.
func mediaError(err error) error {
	switch {
	case errors.Is(err, media.ErrNotFound):
		return mxhttp.NotFound("media not found")
	case errors.Is(err, media.ErrInvalidID):
		return mxhttp.InvalidParam("malformed media ID")
	case errors.Is(err, media.ErrNotYetUploaded):
		return mxhttp.Errorf(http.StatusGatewayTimeout, "M_NOT_YET_UPLOADED", "content has not yet been uploaded")
	case errors.Is(err, media.ErrTooManyPixels):
		return mxhttp.Errorf(http.StatusRequestEntityTooLarge, "M_TOO_LARGE", "content is too large to thumbnail")
	case errors.Is(err, media.ErrCannotThumbnail):
		return mxhttp.Errorf(http.StatusBadRequest, "M_UNKNOWN", "cannot generate thumbnails for the requested content")
	}
	return err
}

// writeMultipart writes the spec's multipart/mixed answer: {} as the
// metadata part, then body with its type, disposition and length. Once the
// header is out an error can only cut the answer short, which the fetching
// side notices (the closing boundary never comes).
func writeMultipart(w http.ResponseWriter, body io.Reader, contentType, fileName string, size int64) {
	mw := multipart.NewWriter(w)
	w.Header().Set("Content-Type", "multipart/mixed; boundary="+mw.Boundary())
	w.WriteHeader(http.StatusOK)
	meta, err := mw.CreatePart(textproto.MIMEHeader{"Content-Type": {"application/json"}})
	if err != nil {
		return
	}
	if _, err := io.WriteString(meta, "{}"); err != nil {
		return
	}
	if contentType == "" {
		contentType = "application/octet-stream"
	}
	h := textproto.MIMEHeader{"Content-Type": {contentType}, MediaPartLength: {strconv.FormatInt(size, 10)}}
	disp := "attachment"
	if fileName != "" {
		if v := mime.FormatMediaType("attachment", map[string]string{"filename": fileName}); v != "" {
			disp = v
		}
	}
	h.Set("Content-Disposition", disp)
	part, err := mw.CreatePart(h)
	if err != nil {
		return
	}
	// Large writes: each becomes a few QUIC frames rather than many small
	// ones (io.Copy's 32 KiB, cut to the response's 4 KiB buffer).
	if _, err := io.CopyBuffer(part, struct{ io.Reader }{body}, make([]byte, 256<<10)); err != nil {
		return
	}
	_ = mw.Close()
}
