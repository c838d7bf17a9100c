package app

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/edgenode/edgenode/clientapi"
	"github.com/edgenode/edgenode/internal/mxhttp"
	"github.com/edgenode/edgenode/media"
	"github.com/edgenode/edgenode/syncapi"
)

// MediaConfig configures the content repository (package media).
type MediaConfig struct {
	// Limits override the storage profile's (media.LimitsForProfile);
	// zero fields keep the profile's.
	Limits media.Limits
	// FreezeUnauthenticated freezes the deprecated unauthenticated media
	// endpoints for media uploaded while it is set (see
	// clientapi.MediaOptions).
	FreezeUnauthenticated bool
	// SweepInterval is how often the media directory is swept for files
	// nothing references (zero: media.DefaultSweepInterval).
	SweepInterval time.Duration
	// NoPrefetch turns off the background fetching of the media other
	// servers' events reference (mediaprefetch.go), for metered networks;
	// SetMediaPrefetch changes it while running.
	NoPrefetch bool
	// Prefetch bounds that fetching (zero fields: the profile's).
	Prefetch PrefetchLimits
}

// remoteFetcher is the media.RemoteFetcher the client API calls: it
// forwards to the one set with SetMediaFetcher (federation's, once the
// libp2p host is up), and until then fetches nothing.
type remoteFetcher struct {
	f atomic.Pointer[media.RemoteFetcher]
}

// Fetch implements media.RemoteFetcher.
func (r *remoteFetcher) Fetch(ctx context.Context, origin, id string) (*media.Content, error) {
	f := r.f.Load()
	if f == nil {
		return nil, fmt.Errorf("%w: no remote fetching", media.ErrNotFound)
	}
	return (*f).Fetch(ctx, origin, id)
}

// SetMediaFetcher plugs f in as the fetcher of other servers' media (the
// federation side does, once the libp2p host is up); downloads of remote
// media not cached call it from then on.
func (a *App) SetMediaFetcher(f media.RemoteFetcher) { a.mediaRemote.f.Store(&f) }

// openMedia opens the media store in <data dir>/media, its index in the
// node's database.
func (a *App) openMedia(ctx context.Context, cfg Config) error {
	st, err := media.Open(ctx, media.Options{
		DB:            a.node.KV(),
		Dir:           filepath.Join(cfg.Node.DataDir, "media"),
		ServerName:    a.node.ServerName(),
		Profile:       cfg.Node.StorageProfile,
		Limits:        cfg.Media.Limits,
		SweepInterval: cfg.Media.SweepInterval,
		Logger:        a.log,
	})
	if err != nil {
		return fmt.Errorf("media: %w", err)
	}
	a.media = st
	a.mediaFreeze = cfg.Media.FreezeUnauthenticated
	return nil
}

// clientHandler is Handler with the content repository.
func (a *App) clientHandler() http.Handler {
	rt := mxhttp.NewRouter(a.node, a.node.Logger())
	clientapi.Register(rt, a.node)
	clientapi.RegisterMedia(rt, a.node, clientapi.MediaOptions{
		Store: a.media, Remote: &a.mediaRemote, FreezeUnauthenticated: a.mediaFreeze, Logger: a.log,
	})
	syncapi.Register(rt, a.node)
	return rt
}
