package federation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"strconv"

	"github.com/edgenode/edgenode/internal/identity"
	"github.com/edgenode/edgenode/media"
	"github.com/edgenode/edgenode/node/core"
	"github.com/matrix-org/gomatrixserverlib/fclient"
	"github.com/matrix-org/gomatrixserverlib/spec"
)

// The asking side of the federation content repository: another server's
// media/download and media/thumbnail answers, multipart/mixed, read as a
// stream (mime/multipart) so a file is never held whole in memory. The
// library's DownloadMedia goes through its client's 30 s overall timeout,
// which a large file over a phone's uplink outlives; so these requests are
// signed with the library and sent by a client of our own (stream).

// maxMediaMetaBytes bounds the first (JSON metadata) part of an answer.
const maxMediaMetaBytes = 64 << 10

// maxMediaErrorBytes bounds an error answer's body read for its errcode.
const maxMediaErrorBytes = 64 << 10

// newStreamClient is the client of streamed requests: rt behind the 429
// retry, no overall timeout, and redirects not followed (over libp2p there
// is nowhere else to go).
func newStreamClient(rt http.RoundTripper) *http.Client {
	return &http.Client{
		Transport:     retryLimited{rt},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// RemoteMedia is another server's media answer, its content being read.
// The caller closes it.
type RemoteMedia struct {
	// ContentType and FileName are the content part's (FileName from its
	// Content-Disposition; empty if none).
	ContentType, FileName string
	// Length is the length the content part announces (-1: none). Body
	// never yields more: reading past it fails with media.ErrTooLarge,
	// and ending short of it with io.ErrUnexpectedEOF.
	Length int64
	// Body is the content.
	Body   io.Reader
	closer io.Closer
}

// Close releases the answer (closing the stream if it was not read to
// its end: an over-sending origin is cut off so).
func (m *RemoteMedia) Close() error { return m.closer.Close() }

// DownloadMedia asks server for one of its media items
// (media/download/{mediaId}). An error answer is a *RemoteError in the
// chain, under media.ErrNotFound (404), media.ErrTooLarge (M_TOO_LARGE)
// or media.ErrNotYetUploaded (M_NOT_YET_UPLOADED); anything else, an
// answer that is not the spec's included, is under core.ErrRemoteUnavailable.
func (c *Client) DownloadMedia(ctx context.Context, server, mediaID string) (*RemoteMedia, error) {
	uri := "/_matrix/federation/v1/media/download/" + url.PathEscape(mediaID)
	return c.getMedia(ctx, server, mediaID, uri)
}

// DownloadThumbnail asks server for a thumbnail of one of its media items
// (media/thumbnail/{mediaId}); see DownloadMedia.
func (c *Client) DownloadThumbnail(ctx context.Context, server, mediaID string, ts media.ThumbnailSpec) (*RemoteMedia, error) {
	q := url.Values{}
	q.Set("width", strconv.Itoa(ts.Width))
	q.Set("height", strconv.Itoa(ts.Height))
	q.Set("method", ts.Method)
	q.Set("animated", strconv.FormatBool(ts.Animated))
	uri := "/_matrix/federation/v1/media/thumbnail/" + url.PathEscape(mediaID) + "?" + q.Encode()
	return c.getMedia(ctx, server, mediaID, uri)
}

func (c *Client) getMedia(ctx context.Context, server, mediaID, uri string) (*RemoteMedia, error) {
	if !media.ValidID(mediaID) {
		return nil, media.ErrInvalidID
	}
	if err := c.checkServer(server); err != nil {
		return nil, fmt.Errorf("%w: %w", core.ErrRemoteUnavailable, err)
	}
	origin := spec.ServerName(c.n.ServerName())
	fr := fclient.NewFederationRequest(http.MethodGet, origin, spec.ServerName(server), uri)
	if err := fr.Sign(origin, identity.KeyID, c.n.SigningKey()); err != nil {
		return nil, err
	}
	req, err := fr.HTTPRequest()
	if err != nil {
		return nil, err
	}
	res, err := c.stream.Do(req.WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("federation: media %s/%s: %w: %w", server, mediaID, core.ErrRemoteUnavailable, err)
	}
	m, err := readMediaAnswer(res)
	if err != nil {
		res.Body.Close()
		return nil, fmt.Errorf("federation: media %s/%s: %w", server, mediaID, err)
	}
	return m, nil
}

// readMediaAnswer reads res up to the content part's first byte.
func readMediaAnswer(res *http.Response) (*RemoteMedia, error) {
	if res.StatusCode != http.StatusOK {
		return nil, mediaRemoteError(res)
	}
	mt, params, err := mime.ParseMediaType(res.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/mixed" || params["boundary"] == "" {
		return nil, fmt.Errorf("%w: answer is %q, not multipart/mixed with a boundary", core.ErrRemoteUnavailable, res.Header.Get("Content-Type"))
	}
	mr := multipart.NewReader(res.Body, params["boundary"])
	meta, err := mr.NextPart()
	if err != nil {
		return nil, fmt.Errorf("%w: metadata part: %w", core.ErrRemoteUnavailable, err)
	}
	if mt, _, _ := mime.ParseMediaType(meta.Header.Get("Content-Type")); mt != "application/json" {
		return nil, fmt.Errorf("%w: metadata part is %q, not application/json", core.ErrRemoteUnavailable, meta.Header.Get("Content-Type"))
	}
	raw, err := io.ReadAll(io.LimitReader(meta, maxMediaMetaBytes+1))
	if err != nil || len(raw) > maxMediaMetaBytes || !json.Valid(raw) {
		return nil, fmt.Errorf("%w: metadata part is not a JSON object of at most %d bytes", core.ErrRemoteUnavailable, maxMediaMetaBytes)
	}
	part, err := mr.NextPart()
	if err != nil {
		return nil, fmt.Errorf("%w: content part: %w", core.ErrRemoteUnavailable, err)
	}
	if part.Header.Get("Location") != "" {
		// The spec lets a server redirect to where the media is; over
		// libp2p there is no such place we could reach.
		return nil, fmt.Errorf("%w: content part is a redirect, which is not followed", core.ErrRemoteUnavailable)
	}
	m := &RemoteMedia{ContentType: part.Header.Get("Content-Type"), Length: -1, closer: res.Body}
	if _, p, err := mime.ParseMediaType(part.Header.Get("Content-Disposition")); err == nil {
		m.FileName = p["filename"]
	}
	if v := part.Header.Get(MediaPartLength); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("%w: content part length %q", core.ErrRemoteUnavailable, v)
		}
		m.Length = n
	}
	m.Body = part
	if m.Length >= 0 {
		m.Body = &exactReader{r: part, left: m.Length}
	}
	return m, nil
}

// mediaRemoteError is the error of a media answer other than 200.
func mediaRemoteError(res *http.Response) error {
	body, _ := io.ReadAll(io.LimitReader(res.Body, maxMediaErrorBytes))
	re := &RemoteError{Status: res.StatusCode, Message: string(body)}
	var me struct {
		Code    string `json:"errcode"`
		Message string `json:"error"`
	}
	if json.Unmarshal(body, &me) == nil && me.Code != "" {
		re.Code, re.Message = me.Code, me.Message
	}
	if len(re.Message) > 512 {
		re.Message = re.Message[:512]
	}
	switch {
	case res.StatusCode == http.StatusNotFound:
		return fmt.Errorf("%w: %w", media.ErrNotFound, re)
	case re.Code == "M_TOO_LARGE":
		return fmt.Errorf("%w: %w", media.ErrTooLarge, re)
	case re.Code == "M_NOT_YET_UPLOADED":
		return fmt.Errorf("%w: %w", media.ErrNotYetUploaded, re)
	}
	return fmt.Errorf("%w: %w", core.ErrRemoteUnavailable, re)
}

// errOverAnnounced is what exactReader reads past the announced length.
var errOverAnnounced = fmt.Errorf("%w: the origin sent more than it announced", media.ErrTooLarge)

// exactReader yields exactly left bytes of r: a byte more is
// errOverAnnounced (the rest is never read), and an end before is
// io.ErrUnexpectedEOF.
type exactReader struct {
	r    io.Reader
	left int64
}

func (e *exactReader) Read(p []byte) (int, error) {
	if e.left == 0 {
		// One byte more than announced is enough to know.
		var one [1]byte
		n, err := io.ReadFull(e.r, one[:])
		if n > 0 {
			return 0, errOverAnnounced
		}
		if errors.Is(err, io.EOF) {
			return 0, io.EOF
		}
		return 0, err
	}
	if int64(len(p)) > e.left {
		p = p[:e.left]
	}
	n, err := e.r.Read(p)
	e.left -= int64(n)
	if errors.Is(err, io.EOF) {
		if e.left > 0 {
			return n, io.ErrUnexpectedEOF
		}
		err = nil // the check for a byte more is the next Read's
	}
	return n, err
}
