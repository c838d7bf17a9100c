package app

import (
	"bytes"
	"context"
	"encoding/json"
	"image"
	"image/color"
	"image/png"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgenode/edgenode/node"
	"github.com/edgenode/edgenode/node/core"
)

// uploadMedia uploads data to a's client API as the holder of token and
// returns the mxc URI's server name and media ID.
func uploadMedia(ctx context.Context, t *testing.T, a *App, token, contentType string, data []byte) (origin, id string) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.BaseURL()+"/_matrix/media/v3/upload?filename=pic.png", bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", contentType)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("upload: %v", err)
	}
	defer res.Body.Close()
	var out struct {
		ContentURI string `json:"content_uri"`
	}
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("upload: %d %v %+v", res.StatusCode, err, out)
	}
	origin, id, ok := strings.Cut(strings.TrimPrefix(out.ContentURI, "mxc://"), "/")
	if !ok {
		t.Fatalf("upload: content_uri %q", out.ContentURI)
	}
	return origin, id
}

// getMedia GETs path (under /_matrix/client/v1/media/) from a's client API
// as the holder of token.
func getMedia(ctx context.Context, t *testing.T, a *App, token, path string) (int, []byte, http.Header) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.BaseURL()+"/_matrix/client/v1/media/"+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("GET %s: reading: %v", path, err)
	}
	return res.StatusCode, body, res.Header
}

// mustGetMedia is getMedia that fails the test on a status other than 200.
func mustGetMedia(ctx context.Context, t *testing.T, a *App, token, path string) []byte {
	t.Helper()
	status, body, _ := getMedia(ctx, t, a, token, path)
	if status != http.StatusOK {
		t.Fatalf("GET %s on %s: %d %s", path, a.ServerName(), status, body)
	}
	return body
}

// testPNG is a w x h PNG of noise (so it does not compress to nothing).
func testPNG(t *testing.T, w, h int, seed uint64) []byte {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, seed))
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.RGBA{uint8(rng.IntN(256)), uint8(x), uint8(y), 255})
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// sendImage sends an m.image of url with a thumbnail thumb into roomID as
// sender and returns its event ID.
func sendImage(ctx context.Context, t *testing.T, n *node.Node, sender, roomID, url, thumb string, size int) string {
	t.Helper()
	content, err := json.Marshal(map[string]any{
		"msgtype": "m.image", "body": "pic.png", "url": url,
		"info": map[string]any{"mimetype": "image/png", "size": size, "thumbnail_url": thumb,
			"thumbnail_info": map[string]any{"mimetype": "image/png"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	id, err := n.SendEvent(ctx, core.SendRequest{Sender: sender, RoomID: roomID, Type: "m.room.message", Content: content})
	if err != nil {
		t.Fatalf("send image: %v", err)
	}
	return id
}

// waitCached waits (bounded by ctx) until a's media store has origin/id.
func waitCached(ctx context.Context, t *testing.T, a *App, origin, id string) {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if c, err := a.media.Get(ctx, origin, id); err == nil {
			c.Close()
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s never cached %s/%s (prefetch %+v)", a.ServerName(), origin, id, a.MediaPrefetchStats())
		case <-tick.C:
		}
	}
}

// TestMediaBetweenNodes: alice on A uploads a picture and its thumbnail;
// bob on B downloads both, and a thumbnail B makes, through B's
// authenticated endpoints, byte-identical, B fetching them from A over
// libp2p. Then alice sends another picture in an m.image: B prefetches it
// and its thumbnail as the event arrives, A is stopped (the sender's phone
// asleep), and bob still downloads both from B's cache.
func TestMediaBetweenNodes(t *testing.T) {
	a, b := startPair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	r := sharedRoom(ctx, t, a, b)
	alice, bob := r.alice, r.bob

	pic, thumb := testPNG(t, 320, 240, 1), testPNG(t, 64, 48, 2)
	picOrigin, picID := uploadMedia(ctx, t, a, alice.AccessToken, "image/png", pic)
	_, thumbID := uploadMedia(ctx, t, a, alice.AccessToken, "image/png", thumb)
	if picOrigin != a.ServerName() {
		t.Fatalf("upload on A made mxc://%s/...", picOrigin)
	}
	if got := mustGetMedia(ctx, t, b, bob.AccessToken, "download/"+picOrigin+"/"+picID); !bytes.Equal(got, pic) {
		t.Fatalf("bob's download of the picture through B: %d bytes, not alice's %d", len(got), len(pic))
	}
	if got := mustGetMedia(ctx, t, b, bob.AccessToken, "download/"+picOrigin+"/"+thumbID+"/thumb.png"); !bytes.Equal(got, thumb) {
		t.Fatalf("bob's download of the thumbnail through B: %d bytes, not alice's %d", len(got), len(thumb))
	}
	tb := mustGetMedia(ctx, t, b, bob.AccessToken, "thumbnail/"+picOrigin+"/"+picID+"?width=32&height=32&method=crop")
	if cfg, err := png.DecodeConfig(bytes.NewReader(tb)); err != nil || cfg.Width != 32 || cfg.Height != 32 {
		t.Fatalf("B's thumbnail of A's picture: %v %+v", err, cfg)
	}
	fetched := b.mediaFetch.Started()
	if fetched != 2 {
		t.Errorf("B fetched %d items from A, want 2 (the thumbnail is made from the cached picture)", fetched)
	}

	// The sender asleep.
	pic2, thumb2 := testPNG(t, 200, 100, 3), testPNG(t, 40, 20, 4)
	_, pic2ID := uploadMedia(ctx, t, a, alice.AccessToken, "image/png", pic2)
	_, thumb2ID := uploadMedia(ctx, t, a, alice.AccessToken, "image/png", thumb2)
	ev := sendImage(ctx, t, a.node, alice.UserID, r.roomID, "mxc://"+picOrigin+"/"+pic2ID, "mxc://"+picOrigin+"/"+thumb2ID, len(pic2))
	waitForEvent(ctx, t, b, bob.UserID, r.roomID, ev)
	waitCached(ctx, t, b, picOrigin, thumb2ID)
	waitCached(ctx, t, b, picOrigin, pic2ID)
	closeApp(t, a)

	if got := mustGetMedia(ctx, t, b, bob.AccessToken, "download/"+picOrigin+"/"+pic2ID); !bytes.Equal(got, pic2) {
		t.Fatalf("with A stopped, bob's download of the picture through B: %d bytes, not alice's %d", len(got), len(pic2))
	}
	if got := mustGetMedia(ctx, t, b, bob.AccessToken, "download/"+picOrigin+"/"+thumb2ID); !bytes.Equal(got, thumb2) {
		t.Fatalf("with A stopped, bob's download of the thumbnail through B: %d bytes, not alice's %d", len(got), len(thumb2))
	}
	mustGetMedia(ctx, t, b, bob.AccessToken, "thumbnail/"+picOrigin+"/"+pic2ID+"?width=50&height=50")
	if st := b.MediaPrefetchStats(); st.Fetched != 2 || st.Failed != 0 {
		t.Errorf("B's prefetch: %+v, want 2 fetched and none failed", st)
	}
	// Media B never saw is not there, and says so.
	if status, body, _ := getMedia(ctx, t, b, bob.AccessToken, "download/"+picOrigin+"/neverUploaded"); status != http.StatusBadGateway && status != http.StatusNotFound {
		t.Errorf("media of a stopped origin B never cached: %d %s, want 502 or 404", status, body)
	}
}

// TestMediaConcurrentDownloadsShareOneFetch: twenty of bob's downloads of
// the same picture of A's at once through B make one fetch from A, and
// each gets the picture whole.
func TestMediaConcurrentDownloadsShareOneFetch(t *testing.T) {
	a, b := startPair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	r := sharedRoom(ctx, t, a, b)
	pic := testPNG(t, 800, 600, 5) // ~1.4 MB: the fetch takes a while
	origin, id := uploadMedia(ctx, t, a, r.alice.AccessToken, "image/png", pic)

	const n = 20
	var wg sync.WaitGroup
	errs := make(chan string, n)
	start := make(chan struct{})
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, b.BaseURL()+"/_matrix/client/v1/media/download/"+origin+"/"+id, nil)
			req.Header.Set("Authorization", "Bearer "+r.bob.AccessToken)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				errs <- err.Error()
				return
			}
			defer res.Body.Close()
			got, err := io.ReadAll(res.Body)
			if err != nil || res.StatusCode != http.StatusOK || !bytes.Equal(got, pic) {
				errs <- http.StatusText(res.StatusCode) + ": " + string(got[:min(len(got), 200)])
			}
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if got := b.mediaFetch.Started(); got != 1 {
		t.Errorf("%d concurrent downloads made %d fetches from A, want 1", n, got)
	}
}
