package clientapi

import (
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/edgenode/edgenode/media"
)

// mediaCSP keeps served media from running anything should a browser
// open it as a page (the value Synapse serves).
const mediaCSP = "sandbox; default-src 'none'; script-src 'none'; plugin-types application/pdf; style-src 'unsafe-inline'; media-src 'self'; object-src 'self';"

// inlineTypes are the content types the spec allows served inline
// ("Serving inline content", v1.12); everything else is an attachment.
var inlineTypes = map[string]bool{
	"text/css": true, "text/plain": true, "text/csv": true,
	"application/json": true, "application/ld+json": true,
	"image/jpeg": true, "image/gif": true, "image/png": true, "image/apng": true,
	"image/webp": true, "image/avif": true,
	"video/mp4": true, "video/webm": true, "video/ogg": true, "video/quicktime": true,
	"audio/mp4": true, "audio/webm": true, "audio/aac": true, "audio/mpeg": true,
	"audio/ogg": true, "audio/wave": true, "audio/wav": true, "audio/x-wav": true,
	"audio/x-pn-wav": true, "audio/flac": true, "audio/x-flac": true,
}

// safeInline reports whether contentType may be shown inline.
func safeInline(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && inlineTypes[strings.ToLower(mt)]
}

// contentDisposition is the Content-Disposition of a download: inline
// only for safe types (or forced, for thumbnails), with the file name
// encoded per RFC 6266 (filename*= for non-ASCII names).
func contentDisposition(contentType, name string, forceInline bool) string {
	disp := "attachment"
	if forceInline || safeInline(contentType) {
		disp = "inline"
	}
	if name == "" {
		return disp
	}
	if v := mime.FormatMediaType(disp, map[string]string{"filename": name}); v != "" {
		return v
	}
	return disp // a name mime cannot encode: none rather than a broken header
}

// serveContent writes c with the safe-serving headers; http.ServeContent
// answers ranges and conditional requests.
func serveContent(w http.ResponseWriter, r *http.Request, c io.ReadSeeker, contentType, name string, forceInline bool) {
	h := w.Header()
	if contentType == "" {
		contentType = "application/octet-stream"
	}
	h.Set("Content-Type", contentType)
	h.Set("Content-Disposition", contentDisposition(contentType, name, forceInline))
	h.Set("Content-Security-Policy", mediaCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cross-Origin-Resource-Policy", "cross-origin")
	// Media never changes under its ID.
	h.Set("Cache-Control", "private, max-age=86400, immutable")
	var mod time.Time
	if rec, ok := c.(*media.Content); ok {
		mod = time.UnixMilli(rec.CreatedMS)
	}
	http.ServeContent(w, r, "", mod, c)
}
