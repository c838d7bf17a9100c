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
func uploadMedia(ctx context.Context, t testing.TB, a *App, token, contentType string, data []byte) (origin, id string) {
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
// and its thumbnail as the event arrives, and alice's new avatar as her
// member event does; A is stopped (the sender's phone asleep), and bob
// still downloads all three from B's cache.
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
	// And alice's new avatar, through her member event.
	avatar := testPNG(t, 48, 48, 5)
	_, avatarID := uploadMedia(ctx, t, a, alice.AccessToken, "image/png", avatar)
	avatarURL := "mxc://" + picOrigin + "/" + avatarID
	if err := a.node.SetProfile(ctx, alice.UserID, "", nil, &avatarURL); err != nil {
		t.Fatal(err)
	}
	waitCached(ctx, t, b, picOrigin, thumb2ID)
	waitCached(ctx, t, b, picOrigin, pic2ID)
	waitCached(ctx, t, b, picOrigin, avatarID)
	waitPrefetch(ctx, t, b, func(st MediaPrefetchStats) bool { return st.Fetched+st.Failed >= 3 })
	closeApp(t, a)

	if got := mustGetMedia(ctx, t, b, bob.AccessToken, "download/"+picOrigin+"/"+pic2ID); !bytes.Equal(got, pic2) {
		t.Fatalf("with A stopped, bob's download of the picture through B: %d bytes, not alice's %d", len(got), len(pic2))
	}
	if got := mustGetMedia(ctx, t, b, bob.AccessToken, "download/"+picOrigin+"/"+thumb2ID); !bytes.Equal(got, thumb2) {
		t.Fatalf("with A stopped, bob's download of the thumbnail through B: %d bytes, not alice's %d", len(got), len(thumb2))
	}
	if got := mustGetMedia(ctx, t, b, bob.AccessToken, "download/"+picOrigin+"/"+avatarID); !bytes.Equal(got, avatar) {
		t.Fatalf("with A stopped, bob's download of alice's avatar through B: %d bytes, not alice's %d", len(got), len(avatar))
	}
	mustGetMedia(ctx, t, b, bob.AccessToken, "thumbnail/"+picOrigin+"/"+pic2ID+"?width=50&height=50")
	if st := b.MediaPrefetchStats(); st.Fetched != 3 || st.Failed != 0 {
		t.Errorf("B's prefetch: %+v, want 3 fetched and none failed", st)
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

// TestMediaPrefetchLimitsAndSwitch: B's prefetch, switched off, fetches
// nothing; switched on, it fetches thumbnails and small files, skips a
// file announced larger than the per-file size, cuts off one that turns
// out larger, and stops at the day's byte budget, counting each.
func TestMediaPrefetchLimitsAndSwitch(t *testing.T) {
	const maxFile = 40_000
	p1, thumb, big, big2, p3, p4 := testPNG(t, 40, 40, 11), testPNG(t, 30, 20, 12), testPNG(t, 300, 300, 13),
		testPNG(t, 300, 300, 14), testPNG(t, 50, 50, 15), testPNG(t, 60, 60, 16)
	if len(big) <= maxFile || len(big2) <= maxFile || len(p3) >= maxFile || len(p4) <= 100 {
		t.Fatalf("test images of unexpected sizes: %d %d %d %d", len(big), len(big2), len(p3), len(p4))
	}
	budget := int64(len(thumb) + maxFile + len(p3) + 100)

	a := startP2P(t, nil)
	cfg := loopbackConfig(t.TempDir(), quicAddrs(a))
	cfg.Media.NoPrefetch = true
	cfg.Media.Prefetch = PrefetchLimits{MaxFileBytes: maxFile, BytesPerDay: budget, Workers: 1} // one worker: in order
	b, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeApp(t, b) })
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	r := sharedRoom(ctx, t, a, b)
	up := func(data []byte) string {
		origin, id := uploadMedia(ctx, t, a, r.alice.AccessToken, "image/png", data)
		return "mxc://" + origin + "/" + id
	}
	send := func(url, thumb string, size int) {
		ev := sendImage(ctx, t, a.node, r.alice.UserID, r.roomID, url, thumb, size)
		waitForEvent(ctx, t, b, r.bob.UserID, r.roomID, ev)
	}
	cached := func(mxc string) bool {
		origin, id, _ := strings.Cut(strings.TrimPrefix(mxc, "mxc://"), "/")
		c, err := b.media.Get(ctx, origin, id)
		if err == nil {
			c.Close()
		}
		return err == nil
	}

	u1 := up(p1)
	send(u1, "", len(p1)) // prefetch off
	b.SetMediaPrefetch(true)
	uThumb, uBig, uBig2, u3, u4 := up(thumb), up(big), up(big2), up(p3), up(p4)
	send(uBig, uThumb, len(big)) // the thumbnail, not the file announced too large
	send(uBig2, "", 0)           // not announced: cut off at the per-file size
	send(u3, "", len(p3))
	// The counts move once a reference is done with (after the cache).
	waitPrefetch(ctx, t, b, func(st MediaPrefetchStats) bool { return st.Fetched+st.TooLarge >= 4 })
	for _, c := range []struct {
		name, mxc string
		want      bool
	}{{"sent while off", u1, false}, {"thumbnail", uThumb, true}, {"announced too large", uBig, false}, {"too large", uBig2, false}, {"small", u3, true}} {
		if got := cached(c.mxc); got != c.want {
			t.Errorf("%s: cached %v, want %v", c.name, got, c.want)
		}
	}
	st := b.MediaPrefetchStats()
	if st.Fetched != 2 || st.TooLarge != 2 || st.Failed != 0 || st.OverBudget != 0 || st.BytesToday != budget-100 {
		t.Errorf("stats %+v, want 2 fetched, 2 too large, %d bytes charged", st, budget-100)
	}

	send(u4, "", len(p4)) // over what is left of the day's budget
	waitPrefetch(ctx, t, b, func(st MediaPrefetchStats) bool { return st.OverBudget == 1 })
	if cached(u4) {
		t.Error("the file over budget was fetched")
	}
}

// waitPrefetch waits (bounded by ctx) until a's prefetch counts satisfy ok.
func waitPrefetch(ctx context.Context, t *testing.T, a *App, ok func(MediaPrefetchStats) bool) {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !ok(a.MediaPrefetchStats()) {
		select {
		case <-ctx.Done():
			t.Fatalf("prefetch counts %+v never got there", a.MediaPrefetchStats())
		case <-tick.C:
		}
	}
}
