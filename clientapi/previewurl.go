package clientapi

import (
	"errors"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/edgenode/edgenode/internal/mxhttp"
	"github.com/edgenode/edgenode/node/core"
	"github.com/edgenode/edgenode/urlpreview"
)

// Per-user limit on previews fetched (cached ones are free): ten at once,
// then one every six seconds. A client previews the links it shows, a few
// at a time; the limit keeps one user from making the node a crawler. The
// node-wide bound on fetches in flight is urlpreview's Concurrency.
const (
	previewBurst      = 10
	previewEvery      = 6 * time.Second
	maxPreviewBuckets = 1024
)

// busyRetry is the retry_after given when every fetch slot is taken.
const busyRetry = time.Second

// urlPreviews serves GET preview_url: the previewer and the users' rate
// limits.
type urlPreviews struct {
	p       *urlpreview.Previewer
	mu      sync.Mutex
	buckets bucketSet // by user ID
}

// newURLPreviews returns the preview service, or nil when cfg has URL
// previews turned off.
func newURLPreviews(cfg core.Config) *urlPreviews {
	if !cfg.URLPreview {
		return nil
	}
	return &urlPreviews{
		p:       urlpreview.New(urlpreview.Options{}),
		buckets: newBucketSet(bucketRate{burst: previewBurst, every: previewEvery}, maxPreviewBuckets),
	}
}

// take charges a fetch to user, or says how long until one is allowed.
func (u *urlPreviews) take(user string) time.Duration {
	now := time.Now()
	u.mu.Lock()
	defer u.mu.Unlock()
	if wait := u.buckets.wait(user, now); wait > 0 {
		return wait
	}
	u.buckets.take(user, now)
	return 0
}

// previewURL is GET /_matrix/client/v1/media/preview_url and the
// deprecated /_matrix/media/v3/preview_url. Turned off (the default), it
// answers 404 M_UNRECOGNIZED, what Synapse answers with
// url_preview_enabled false (it does not register the endpoint) and what
// clients take as "this server does no previews". ts is checked but the
// freshest preview the node has is served, which the spec allows.
func (a *api) previewURL(w http.ResponseWriter, r *http.Request) error {
	if a.previews == nil {
		return mxhttp.Errorf(http.StatusNotFound, "M_UNRECOGNIZED", "URL previews are turned off on this server")
	}
	q := r.URL.Query()
	raw := q.Get("url")
	if raw == "" {
		return mxhttp.MissingParam("url is required")
	}
	if ts := q.Get("ts"); ts != "" {
		if _, err := strconv.ParseInt(ts, 10, 64); err != nil {
			return mxhttp.InvalidParam("ts must be an integer")
		}
	}
	if _, err := urlpreview.ParseURL(raw); err != nil {
		return previewError(err) // refused before it costs the user anything
	}
	if pv, ok := a.previews.p.Cached(raw); ok {
		mxhttp.WriteJSON(w, http.StatusOK, pv)
		return nil
	}
	if wait := a.previews.take(mxhttp.DeviceFrom(r).UserID); wait > 0 {
		return mxhttp.LimitExceeded(wait, "too many URL previews; try again later")
	}
	pv, err := a.previews.p.Preview(r.Context(), raw)
	if err != nil {
		a.log.Debug("url preview failed", "err", err)
		return previewError(err)
	}
	mxhttp.WriteJSON(w, http.StatusOK, pv)
	return nil
}

// previewError turns a urlpreview error into the Matrix error the client
// sees. A page that cannot be fetched is the gateway's fault, 502 (as
// Synapse answers).
func previewError(err error) error {
	switch {
	case errors.Is(err, urlpreview.ErrBadURL):
		return mxhttp.InvalidParam("url must be an absolute http or https URL")
	case errors.Is(err, urlpreview.ErrForbidden):
		return mxhttp.Forbidden("the URL's address is not one this server fetches from")
	case errors.Is(err, urlpreview.ErrBusy):
		return mxhttp.LimitExceeded(busyRetry, "the server is fetching too many URL previews; try again later")
	case errors.Is(err, urlpreview.ErrFetch):
		return mxhttp.Errorf(http.StatusBadGateway, "M_UNKNOWN", "could not fetch the URL")
	default:
		return err
	}
}
