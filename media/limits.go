package media

import (
	"fmt"
	"time"

	"github.com/edgenode/edgenode/internal/devprofile"
)

// Limits bound what the store accepts and keeps. Zero fields of a Limits
// given to Open take the profile's defaults (LimitsForProfile); a negative
// quota means none.
type Limits struct {
	// MaxUploadBytes is the largest single upload (m.upload.size).
	MaxUploadBytes int64
	// UserQuotaBytes bounds the bytes one user may have uploaded in total.
	UserQuotaBytes int64
	// TotalQuotaBytes bounds the bytes of all local uploads together.
	TotalQuotaBytes int64
	// RemoteCacheBytes is the byte budget of the cache of other servers'
	// media; beyond it the least recently used items are evicted.
	RemoteCacheBytes int64
	// MaxPendingPerUser bounds a user's created but not yet uploaded media
	// IDs (POST /media/v1/create).
	MaxPendingPerUser int
	// PendingTTL is how long a created media ID waits for its upload.
	PendingTTL time.Duration
	// MaxThumbnailPixels is the largest image (width x height, read from
	// its header) the store decodes to make a thumbnail: a decoded image
	// takes 1.5 to 4 bytes per pixel, so this bounds a thumbnailing's
	// memory whatever the file's size (a decompression bomb).
	MaxThumbnailPixels int64
	// ThumbnailWorkers bounds thumbnailings running at once.
	ThumbnailWorkers int
	// MaxThumbnailsPerMedia bounds the cached thumbnails of one media item
	// (clients ask for arbitrary sizes); beyond it thumbnails are made
	// but not kept.
	MaxThumbnailsPerMedia int
}

const mib = 1 << 20

// LimitsForProfile returns the limits of a device profile ("phone", "pi",
// "server"; empty is devprofile.Default).
func LimitsForProfile(profile string) (Limits, error) {
	l := Limits{
		MaxPendingPerUser:     10,
		PendingTTL:            24 * time.Hour, // the spec's recommendation
		MaxThumbnailsPerMedia: 12,
	}
	switch devprofile.Resolve(profile) {
	case devprofile.Phone:
		l.MaxUploadBytes = 50 * mib
		l.UserQuotaBytes = 2048 * mib
		l.TotalQuotaBytes = 4096 * mib
		l.RemoteCacheBytes = 256 * mib
		l.MaxThumbnailPixels = 16_000_000 // ~24 MB as YCbCr, 64 MB as RGBA
		l.ThumbnailWorkers = 1
	case devprofile.Pi:
		l.MaxUploadBytes = 100 * mib
		l.UserQuotaBytes = 8192 * mib
		l.TotalQuotaBytes = 16384 * mib
		l.RemoteCacheBytes = 1024 * mib
		l.MaxThumbnailPixels = 25_000_000
		l.ThumbnailWorkers = 2
	case devprofile.Server:
		l.MaxUploadBytes = 100 * mib
		l.UserQuotaBytes = 32768 * mib
		l.TotalQuotaBytes = -1
		l.RemoteCacheBytes = 10240 * mib
		l.MaxThumbnailPixels = 64_000_000
		l.ThumbnailWorkers = 4
	default:
		return Limits{}, fmt.Errorf("media: unknown profile %q", profile)
	}
	return l, nil
}

// withDefaults fills l's zero fields from d.
func (l Limits) withDefaults(d Limits) Limits {
	set := func(v *int64, dv int64) {
		if *v == 0 {
			*v = dv
		}
	}
	set(&l.MaxUploadBytes, d.MaxUploadBytes)
	set(&l.UserQuotaBytes, d.UserQuotaBytes)
	set(&l.TotalQuotaBytes, d.TotalQuotaBytes)
	set(&l.RemoteCacheBytes, d.RemoteCacheBytes)
	set(&l.MaxThumbnailPixels, d.MaxThumbnailPixels)
	if l.MaxPendingPerUser == 0 {
		l.MaxPendingPerUser = d.MaxPendingPerUser
	}
	if l.PendingTTL == 0 {
		l.PendingTTL = d.PendingTTL
	}
	if l.ThumbnailWorkers == 0 {
		l.ThumbnailWorkers = d.ThumbnailWorkers
	}
	if l.MaxThumbnailsPerMedia == 0 {
		l.MaxThumbnailsPerMedia = d.MaxThumbnailsPerMedia
	}
	return l
}
