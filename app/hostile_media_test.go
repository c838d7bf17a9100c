package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"image/png"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgenode/edgenode/internal/testnet"
	"github.com/edgenode/edgenode/media"
	"github.com/edgenode/edgenode/p2ptransport"
)

// TestHostileMediaRequests: another peer M asks A's federation media
// endpoints for what it should not have or with what it should not send:
// A serves its own media to an authenticated peer, and answers everything
// else with the spec's error, never with content: unknown media, media
// A only has cached from another server, malformed and traversing IDs,
// requests without or with a bad signature, a spoofed origin.
func TestHostileMediaRequests(t *testing.T) {
	a := startP2P(t, nil)
	m := startP2P(t, quicAddrs(a))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	waitPeer(ctx, t, a, m.ServerName()) // M dials A at its start
	alice := testnet.Register(ctx, t, a.node, "alice")
	pic := testPNG(t, 64, 64, 7)
	_, id := uploadMedia(ctx, t, a, alice.AccessToken, "image/png", pic)
	// M's own media, which A caches when alice downloads it.
	mallory := testnet.Register(ctx, t, m.node, "mallory")
	_, mID := uploadMedia(ctx, t, m, mallory.AccessToken, "image/png", testPNG(t, 8, 8, 8))
	mustGetMedia(ctx, t, a, alice.AccessToken, "download/"+m.ServerName()+"/"+mID)

	// The honest request, through M's federation client: byte-identical.
	rm, err := m.federation.DownloadMedia(ctx, a.ServerName(), id)
	if err != nil {
		t.Fatalf("M downloads A's media: %v", err)
	}
	got, err := io.ReadAll(rm.Body)
	rm.Close()
	if err != nil || !bytes.Equal(got, pic) || rm.ContentType != "image/png" || rm.FileName != "pic.png" {
		t.Fatalf("M's download: %v, %d bytes (want %d), %q %q", err, len(got), len(pic), rm.ContentType, rm.FileName)
	}

	tm, err := m.federation.DownloadThumbnail(ctx, a.ServerName(), id, media.ThumbnailSpec{Width: 16, Height: 16, Method: media.MethodCrop})
	if err != nil {
		t.Fatalf("M downloads a thumbnail of A's media: %v", err)
	}
	cfg, err := png.DecodeConfig(tm.Body)
	tm.Close()
	if err != nil || cfg.Width != 16 || cfg.Height != 16 || tm.ContentType != "image/png" {
		t.Fatalf("M's thumbnail: %v, %dx%d %q", err, cfg.Width, cfg.Height, tm.ContentType)
	}

	h := hostile{m: m.ServerName(), a: a.ServerName(), key: m.node.SigningKey()}
	wrongName, wrongKey := otherKey(t)
	const dl, th = "/_matrix/federation/v1/media/download/", "/_matrix/federation/v1/media/thumbnail/"
	cases := []struct {
		name    string
		build   func() (*http.Request, error)
		status  int
		errcode string
	}{
		{"own media", func() (*http.Request, error) { return h.signed(h.m, h.key, "GET", dl+id, nil) }, 200, ""},
		{"thumbnail", func() (*http.Request, error) {
			return h.signed(h.m, h.key, "GET", th+id+"?width=16&height=16&method=crop", nil)
		}, 200, ""},
		{"unknown media", func() (*http.Request, error) { return h.signed(h.m, h.key, "GET", dl+"nosuchmedia", nil) }, 404, "M_NOT_FOUND"},
		{"unknown thumbnail", func() (*http.Request, error) {
			return h.signed(h.m, h.key, "GET", th+"nosuchmedia?width=16&height=16", nil)
		}, 404, "M_NOT_FOUND"},
		{"cached media of another server", func() (*http.Request, error) { return h.signed(h.m, h.key, "GET", dl+mID, nil) }, 404, "M_NOT_FOUND"},
		{"malformed ID", func() (*http.Request, error) { return h.signed(h.m, h.key, "GET", dl+"a.b", nil) }, 400, "M_INVALID_PARAM"},
		{"traversing ID", func() (*http.Request, error) {
			return h.signed(h.m, h.key, "GET", dl+"..%2F..%2Fcontent", nil)
		}, 404, "M_UNRECOGNIZED"},
		{"traversing path", func() (*http.Request, error) {
			return h.signed(h.m, h.key, "GET", dl+"../../../key/v2/server", nil)
		}, 404, "M_UNRECOGNIZED"},
		{"thumbnail without width", func() (*http.Request, error) { return h.signed(h.m, h.key, "GET", th+id+"?height=16", nil) }, 400, "M_MISSING_PARAM"},
		{"unauthenticated", func() (*http.Request, error) {
			req, err := h.signed(h.m, h.key, "GET", dl+id, nil)
			if err == nil {
				req.Header.Del("Authorization")
			}
			return req, err
		}, 401, "M_UNAUTHORIZED"},
		{"bad signature", func() (*http.Request, error) { return h.signed(h.m, wrongKey, "GET", dl+id, nil) }, 401, "M_UNAUTHORIZED"},
		{"spoofed origin", func() (*http.Request, error) { return h.signed(wrongName, wrongKey, "GET", dl+id, nil) }, 403, "M_FORBIDDEN"},
	}
	client := &http.Client{Transport: m.p2p.RoundTripper(), Timeout: 30 * time.Second}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, err := c.build()
			if err != nil {
				t.Fatal(err)
			}
			res, err := client.Do(req.WithContext(ctx))
			if err != nil {
				t.Fatalf("request: %v", err)
			}
			defer res.Body.Close()
			body, _ := io.ReadAll(res.Body)
			if res.StatusCode != c.status {
				t.Fatalf("%d %s, want %d %s", res.StatusCode, body, c.status, c.errcode)
			}
			if c.errcode == "" {
				if ct := res.Header.Get("Content-Type"); !bytes.HasPrefix([]byte(ct), []byte("multipart/mixed; boundary=")) {
					t.Fatalf("Content-Type %q, want multipart/mixed with a boundary", ct)
				}
				return
			}
			var e struct {
				Code string `json:"errcode"`
			}
			if err := json.Unmarshal(body, &e); err != nil || e.Code != c.errcode {
				t.Fatalf("body %s, want errcode %s", body, c.errcode)
			}
		})
	}
}

// mediaRogue is a hostile peer serving media: a real libp2p host with a
// key of its own, connected to A, answering A's media/download requests
// as the test says.
type mediaRogue struct {
	name    string
	written atomic.Int64 // content bytes the handlers managed to write
}

// newMediaRogue starts a rogue media server connected to a; serve answers
// each media/download/{mediaId}.
func newMediaRogue(t *testing.T, a *App, serve func(r *mediaRogue, w http.ResponseWriter, req *http.Request)) *mediaRogue {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, key := otherKey(t)
	h, err := p2ptransport.New(ctx, p2ptransport.Config{
		PrivateKey: key, ListenAddrs: []string{"/ip4/127.0.0.1/udp/0/quic-v1"}, StaticPeers: quicAddrs(a),
		Profile: "phone", Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	// Connected before A asks: A knows the rogue from its connection.
	if err := h.Connect(ctx, quicAddrs(a)[0]); err != nil {
		t.Fatal(err)
	}
	r := &mediaRogue{name: h.ServerName()}
	waitPeer(ctx, t, a, r.name)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /_matrix/federation/v1/media/download/{mediaId}", func(w http.ResponseWriter, req *http.Request) { serve(r, w, req) })
	srv := &http.Server{Handler: mux, ConnContext: p2ptransport.ConnContext, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(h.Listener()) }()
	t.Cleanup(func() {
		_ = srv.Close()
		_ = h.Close()
	})
	return r
}

// stream writes up to total bytes of content to w, counting what it
// wrote, until a write fails (A cut it off) or the request ends.
func (r *mediaRogue) stream(w io.Writer, req *http.Request, total int64) {
	chunk := bytes.Repeat([]byte("x"), 64<<10)
	for sent := int64(0); sent < total && req.Context().Err() == nil; {
		n, err := w.Write(chunk[:min(int64(len(chunk)), total-sent)])
		sent += int64(n)
		r.written.Add(int64(n))
		if err != nil {
			return
		}
	}
}

// TestHostileMediaOverSending: a peer whose media answer streams more
// than it announced (or than A accepts, announced or not) is cut off: A's
// client gets 502 M_TOO_LARGE, A stops reading long before the peer
// stops sending, and nothing of it stays in A's cache or on its disk. An
// answer that ends short, redirects or is not multipart is a 502 too.
func TestHostileMediaOverSending(t *testing.T) {
	cfg := loopbackConfig(t.TempDir(), nil)
	cfg.Media.Limits.MaxUploadBytes = 1 << 20
	cfg.Media.NoPrefetch = true
	a, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeApp(t, a) })
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	alice := testnet.Register(ctx, t, a.node, "alice")

	const flood = 256 << 20 // what a liar would send if let
	multipartHead := func(w http.ResponseWriter, part textproto.MIMEHeader) io.Writer {
		mw := multipart.NewWriter(w)
		w.Header().Set("Content-Type", "multipart/mixed; boundary="+mw.Boundary())
		meta, _ := mw.CreatePart(textproto.MIMEHeader{"Content-Type": {"application/json"}})
		_, _ = io.WriteString(meta, "{}")
		p, _ := mw.CreatePart(part)
		return p
	}
	rogue := newMediaRogue(t, a, func(r *mediaRogue, w http.ResponseWriter, req *http.Request) {
		switch req.PathValue("mediaId") {
		case "liar": // announces 1000 bytes, sends everything
			r.stream(multipartHead(w, textproto.MIMEHeader{"Content-Type": {"image/png"}, "Content-Length": {"1000"}}), req, flood)
		case "unannounced": // no length, more than A accepts
			r.stream(multipartHead(w, textproto.MIMEHeader{"Content-Type": {"image/png"}}), req, flood)
		case "huge": // announces more than A accepts
			r.stream(multipartHead(w, textproto.MIMEHeader{"Content-Type": {"image/png"}, "Content-Length": {strconv.Itoa(flood)}}), req, flood)
		case "short": // announces 5000 bytes, sends 100 and ends
			mw := multipart.NewWriter(w)
			w.Header().Set("Content-Type", "multipart/mixed; boundary="+mw.Boundary())
			meta, _ := mw.CreatePart(textproto.MIMEHeader{"Content-Type": {"application/json"}})
			_, _ = io.WriteString(meta, "{}")
			p, _ := mw.CreatePart(textproto.MIMEHeader{"Content-Type": {"image/png"}, "Content-Length": {"5000"}})
			_, _ = p.Write(bytes.Repeat([]byte("y"), 100))
			_ = mw.Close()
		case "redirect":
			_, _ = multipartHead(w, textproto.MIMEHeader{"Location": {"https://example.org/x"}}).Write(nil)
		case "json":
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, "{}")
		default:
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotFound)
			_, _ = io.WriteString(w, `{"errcode":"M_NOT_FOUND","error":"no"}`)
		}
	})

	cases := []struct {
		id      string
		status  int
		errcode string
	}{
		{"liar", http.StatusBadGateway, "M_TOO_LARGE"},
		{"unannounced", http.StatusBadGateway, "M_TOO_LARGE"},
		{"huge", http.StatusBadGateway, "M_TOO_LARGE"},
		{"short", http.StatusBadGateway, "M_UNKNOWN"},
		{"redirect", http.StatusBadGateway, "M_UNKNOWN"},
		{"json", http.StatusBadGateway, "M_UNKNOWN"},
		{"gone", http.StatusNotFound, "M_NOT_FOUND"},
	}
	for _, c := range cases {
		before := rogue.written.Load()
		status, body, _ := getMedia(ctx, t, a, alice.AccessToken, "download/"+rogue.name+"/"+c.id)
		var e struct {
			Code string `json:"errcode"`
		}
		_ = json.Unmarshal(body, &e)
		if status != c.status || e.Code != c.errcode {
			t.Errorf("%s: %d %s, want %d %s", c.id, status, body, c.status, c.errcode)
		}
		sent := rogue.written.Load() - before
		if sent > 64<<20 {
			t.Errorf("%s: A let the peer send %d MiB before cutting it off", c.id, sent>>20)
		}
		t.Logf("%s: %d %s after the peer wrote %d KiB", c.id, status, e.Code, sent>>10)
	}
	u, err := a.media.Usage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if u.RemoteFiles != 0 || u.RemoteBytes != 0 || u.DiskFiles != 0 {
		t.Errorf("A's media after the rogue: %+v, want nothing cached", u)
	}
	tmp, err := os.ReadDir(filepath.Join(cfg.Node.DataDir, "media", "tmp"))
	if err != nil || len(tmp) != 0 {
		t.Errorf("A's media tmp dir: %d files (%v), want none", len(tmp), err)
	}
	if _, err := a.media.Get(ctx, rogue.name, "liar"); err == nil {
		t.Error("the liar's media is in A's cache")
	} else if !errors.Is(err, media.ErrNotFound) {
		t.Errorf("the liar's media: %v, want not found", err)
	}
}

// waitPeer waits (bounded by ctx) until a has a connection to name.
func waitPeer(ctx context.Context, t *testing.T, a *App, name string) {
	t.Helper()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		for _, p := range a.p2p.Peers() {
			if p.ServerName == name {
				return
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s never connected to %s", name, a.ServerName())
		case <-tick.C:
		}
	}
}
