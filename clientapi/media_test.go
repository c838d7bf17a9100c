package clientapi_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"hash/crc32"
	"image"
	"image/color"
	"image/png"
	"io"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/edgenode/edgenode/app"
	"github.com/edgenode/edgenode/internal/testnode"
	"github.com/edgenode/edgenode/node"
)

const (
	mediaV1     = "/_matrix/client/v1/media"
	mediaLegacy = "/_matrix/media/v3"
)

// mediaResponse is a raw HTTP response of the media API.
type mediaResponse struct {
	status int
	header http.Header
	body   []byte
}

func (r mediaResponse) errcode() string {
	var e struct {
		Errcode string `json:"errcode"`
	}
	_ = json.Unmarshal(r.body, &e)
	return e.Errcode
}

func (r mediaResponse) field(k string) any {
	var m map[string]any
	_ = json.Unmarshal(r.body, &m)
	return m[k]
}

// mediaDo sends a raw request (body streamed from r, of length size, -1
// unknown) and reads the whole answer.
func mediaDo(t testing.TB, method, u, token, contentType string, body io.Reader, size int64) mediaResponse {
	t.Helper()
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.ContentLength = size
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return mediaResponse{status: -1, body: []byte(err.Error())}
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return mediaResponse{status: res.StatusCode, header: res.Header, body: b}
}

func expectMedia(t testing.TB, r mediaResponse, status int, errcode string) {
	t.Helper()
	if r.status != status || r.errcode() != errcode {
		t.Fatalf("got %d %q, want %d %q; body %.300s", r.status, r.errcode(), status, errcode, r.body)
	}
}

// upload uploads b and returns its server name and media ID.
func upload(t testing.TB, n *testnode.Node, token, contentType, filename string, b []byte) (server, id string) {
	t.Helper()
	u := n.URL + mediaLegacy + "/upload"
	if filename != "" {
		u += "?filename=" + url.QueryEscape(filename)
	}
	res := mediaDo(t, "POST", u, token, contentType, bytes.NewReader(b), int64(len(b)))
	expectMedia(t, res, http.StatusOK, "")
	uri, _ := res.field("content_uri").(string)
	server, id, ok := strings.Cut(strings.TrimPrefix(uri, "mxc://"), "/")
	if !ok || !strings.HasPrefix(uri, "mxc://") {
		t.Fatalf("content_uri %q", uri)
	}
	return server, id
}

func randomData(t testing.TB, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func testPNG(t testing.TB, w, h int) []byte {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.RGBA{uint8(x), uint8(y), 80, 255})
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// pngBomb is a tiny PNG whose header announces w x h pixels.
func pngBomb(w, h uint32) []byte {
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	chunk := func(typ string, data []byte) {
		binary.Write(&b, binary.BigEndian, uint32(len(data)))
		crc := crc32.NewIEEE()
		crc.Write([]byte(typ))
		crc.Write(data)
		b.WriteString(typ)
		b.Write(data)
		binary.Write(&b, binary.BigEndian, crc.Sum32())
	}
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], w)
	binary.BigEndian.PutUint32(ihdr[4:], h)
	ihdr[8], ihdr[9] = 8, 2
	chunk("IHDR", ihdr)
	chunk("IDAT", []byte{0x78, 0x9c, 0x63, 0x60, 0x18, 0x05, 0xa3, 0x60, 0x14, 0x0c, 0x77, 0x00, 0x00})
	chunk("IEND", nil)
	return b.Bytes()
}

func TestMediaUploadDownloadRoundTrip(t *testing.T) {
	n := testnode.Start(t, testnode.Options{})
	alice, bob := n.Register("alice"), n.Register("bob")
	data := randomData(t, 2<<20)
	server, id := upload(t, n, alice.Token, "image/png", "holiday photo é.png", data)
	if server != n.App.Node.ServerName() {
		t.Fatalf("server %q", server)
	}
	res := mediaDo(t, "GET", n.URL+mediaV1+"/download/"+server+"/"+id, bob.Token, "", nil, 0)
	expectMedia(t, res, http.StatusOK, "")
	if !bytes.Equal(res.body, data) {
		t.Fatal("downloaded bytes differ")
	}
	for k, want := range map[string]string{
		"Content-Type":                 "image/png",
		"Content-Disposition":          "inline; filename*=utf-8''holiday%20photo%20%C3%A9.png",
		"X-Content-Type-Options":       "nosniff",
		"Cross-Origin-Resource-Policy": "cross-origin",
	} {
		if got := res.header.Get(k); got != want {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}
	if csp := res.header.Get("Content-Security-Policy"); !strings.HasPrefix(csp, "sandbox; default-src 'none'; script-src 'none';") {
		t.Errorf("Content-Security-Policy %q", csp)
	}
	// A file name in the path overrides; unsafe types are attachments.
	_, htmlID := upload(t, n, alice.Token, "text/html", "", []byte("<script>alert(1)</script>"))
	res = mediaDo(t, "GET", n.URL+mediaV1+"/download/"+server+"/"+htmlID+"/page.html", bob.Token, "", nil, 0)
	expectMedia(t, res, http.StatusOK, "")
	if got := res.header.Get("Content-Disposition"); got != `attachment; filename=page.html` {
		t.Errorf("Content-Disposition of HTML %q", got)
	}
	// Ranges work.
	req, _ := http.NewRequest("GET", n.URL+mediaV1+"/download/"+server+"/"+id, nil)
	req.Header.Set("Authorization", "Bearer "+bob.Token)
	req.Header.Set("Range", "bytes=10-19")
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	part, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if r.StatusCode != http.StatusPartialContent || !bytes.Equal(part, data[10:20]) {
		t.Fatalf("range: %d, %d bytes", r.StatusCode, len(part))
	}
	// The config, both ways.
	for _, p := range []string{mediaV1 + "/config", mediaLegacy + "/config"} {
		res = mediaDo(t, "GET", n.URL+p, bob.Token, "", nil, 0)
		expectMedia(t, res, http.StatusOK, "")
		if v, _ := res.field("m.upload.size").(float64); v <= 0 {
			t.Errorf("%s: m.upload.size %v", p, res.field("m.upload.size"))
		}
	}
}

func TestMediaErrors(t *testing.T) {
	n := testnode.Start(t, testnode.Options{})
	alice := n.Register("alice")
	server, id := upload(t, n, alice.Token, "text/plain", "", []byte("hello"))
	for _, c := range []struct {
		name, method, path, token string
		status                    int
		errcode                   string
	}{
		{"unauthenticated v1 download", "GET", mediaV1 + "/download/" + server + "/" + id, "", 401, "M_MISSING_TOKEN"},
		{"unauthenticated v1 thumbnail", "GET", mediaV1 + "/thumbnail/" + server + "/" + id + "?width=32&height=32", "", 401, "M_MISSING_TOKEN"},
		{"unauthenticated v1 config", "GET", mediaV1 + "/config", "", 401, "M_MISSING_TOKEN"},
		{"unauthenticated upload", "POST", mediaLegacy + "/upload", "", 401, "M_MISSING_TOKEN"},
		{"unknown media", "GET", mediaV1 + "/download/" + server + "/nosuchmediaid", alice.Token, 404, "M_NOT_FOUND"},
		{"unknown remote media", "GET", mediaV1 + "/download/far.example/nosuchmediaid", alice.Token, 404, "M_NOT_FOUND"},
		{"unknown media, legacy", "GET", mediaLegacy + "/download/" + server + "/nosuchmediaid", "", 404, "M_NOT_FOUND"},
		{"dot in ID", "GET", mediaV1 + "/download/" + server + "/a.b", alice.Token, 400, "M_INVALID_PARAM"},
		{"encoded slash", "GET", mediaV1 + "/download/" + server + "/..%2F..%2Fdb", alice.Token, 400, "M_INVALID_PARAM"},
		{"encoded traversal in server", "GET", mediaV1 + "/download/..%2F..%2F/" + id, alice.Token, 400, "M_INVALID_PARAM"},
		{"traversal", "GET", mediaV1 + "/download/" + server + "/../../../db/MANIFEST", alice.Token, 404, "M_UNRECOGNIZED"},
		{"long ID", "GET", mediaV1 + "/download/" + server + "/" + strings.Repeat("a", 300), alice.Token, 400, "M_INVALID_PARAM"},
		{"thumbnail without size", "GET", mediaV1 + "/thumbnail/" + server + "/" + id, alice.Token, 400, "M_MISSING_PARAM"},
		{"thumbnail bad method", "GET", mediaV1 + "/thumbnail/" + server + "/" + id + "?width=3&height=3&method=zoom", alice.Token, 400, "M_INVALID_PARAM"},
		{"thumbnail negative", "GET", mediaV1 + "/thumbnail/" + server + "/" + id + "?width=-3&height=3", alice.Token, 400, "M_INVALID_PARAM"},
		{"thumbnail of text", "GET", mediaV1 + "/thumbnail/" + server + "/" + id + "?width=32&height=32", alice.Token, 400, "M_UNKNOWN"},
		{"thumbnail unknown", "GET", mediaV1 + "/thumbnail/" + server + "/nosuchmediaid?width=32&height=32", alice.Token, 404, "M_NOT_FOUND"},
	} {
		t.Run(c.name, func(t *testing.T) {
			expectMedia(t, mediaDo(t, c.method, n.URL+c.path, c.token, "", nil, 0), c.status, c.errcode)
		})
	}
}

func TestMediaAsyncUpload(t *testing.T) {
	n := testnode.Start(t, testnode.Options{Configure: func(c *app.Config) { c.Media.Limits.MaxPendingPerUser = 2 }})
	alice, bob := n.Register("alice"), n.Register("bob")
	res := mediaDo(t, "POST", n.URL+"/_matrix/media/v1/create", alice.Token, "", nil, 0)
	expectMedia(t, res, http.StatusOK, "")
	uri, _ := res.field("content_uri").(string)
	if exp, _ := res.field("unused_expires_at").(float64); exp <= 0 {
		t.Fatalf("unused_expires_at %v", res.field("unused_expires_at"))
	}
	server, id, _ := strings.Cut(strings.TrimPrefix(uri, "mxc://"), "/")
	put := func(token, server, id string, b []byte) mediaResponse {
		return mediaDo(t, "PUT", n.URL+mediaLegacy+"/upload/"+server+"/"+id+"?filename=a.txt", token, "text/plain", bytes.NewReader(b), int64(len(b)))
	}
	// Not yet uploaded: a download waits timeout_ms, then 504.
	expectMedia(t, mediaDo(t, "GET", n.URL+mediaV1+"/download/"+server+"/"+id+"?timeout_ms=50", alice.Token, "", nil, 0), 504, "M_NOT_YET_UPLOADED")
	expectMedia(t, put(bob.Token, server, id, []byte("bob's")), 403, "M_FORBIDDEN")
	expectMedia(t, put(alice.Token, server, "neverCreated", []byte("x")), 404, "M_NOT_FOUND")
	expectMedia(t, put(alice.Token, "far.example", id, []byte("x")), 404, "M_NOT_FOUND")
	expectMedia(t, put(alice.Token, server, "bad.id", []byte("x")), 400, "M_INVALID_PARAM")
	expectMedia(t, put(alice.Token, server, id, []byte("alice's")), 200, "")
	expectMedia(t, put(alice.Token, server, id, []byte("again")), 409, "M_CANNOT_OVERWRITE_MEDIA")
	got := mediaDo(t, "GET", n.URL+mediaV1+"/download/"+server+"/"+id, bob.Token, "", nil, 0)
	expectMedia(t, got, 200, "")
	if string(got.body) != "alice's" || got.header.Get("Content-Disposition") != "inline; filename=a.txt" {
		t.Fatalf("downloaded %q, %q", got.body, got.header.Get("Content-Disposition"))
	}
	// Pending IDs are bounded per user.
	expectMedia(t, mediaDo(t, "POST", n.URL+"/_matrix/media/v1/create", alice.Token, "", nil, 0), 200, "")
	expectMedia(t, mediaDo(t, "POST", n.URL+"/_matrix/media/v1/create", alice.Token, "", nil, 0), 200, "")
	expectMedia(t, mediaDo(t, "POST", n.URL+"/_matrix/media/v1/create", alice.Token, "", nil, 0), 429, "M_LIMIT_EXCEEDED")
	expectMedia(t, mediaDo(t, "POST", n.URL+"/_matrix/media/v1/create", bob.Token, "", nil, 0), 200, "")
}

// countingBody produces size bytes and counts how many were read. The
// count is atomic: the client's transport may still be reading the body
// after the server answered early.
type countingBody struct {
	left int64
	read atomic.Int64
	buf  [32 << 10]byte
}

func (c *countingBody) Read(p []byte) (int, error) {
	if c.left <= 0 {
		return 0, io.EOF
	}
	n := copy(p, c.buf[:min(int64(len(c.buf)), c.left)])
	c.left -= int64(n)
	c.read.Add(int64(n))
	return n, nil
}

// TestMediaUploadOverLimit: an upload over m.upload.size answers 413
// M_TOO_LARGE; with a Content-Length over the limit before the body is
// read, without one as soon as the limit is passed. The body is never
// buffered: what the whole process allocates during the request is a
// fraction of the body.
func TestMediaUploadOverLimit(t *testing.T) {
	const limit = 1 << 20
	n := testnode.Start(t, testnode.Options{Configure: func(c *app.Config) { c.Media.Limits.MaxUploadBytes = limit }})
	alice := n.Register("alice")
	for _, c := range []struct {
		name     string
		announce bool
	}{{"content-length", true}, {"chunked", false}} {
		t.Run(c.name, func(t *testing.T) {
			const size = 256 << 20
			body := &countingBody{left: size}
			length := int64(-1)
			if c.announce {
				length = size
			}
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			res := mediaDo(t, "POST", n.URL+mediaLegacy+"/upload", alice.Token, "application/octet-stream", body, length)
			runtime.ReadMemStats(&after)
			if res.status != -1 { // the server may close before the client reads its answer
				expectMedia(t, res, 413, "M_TOO_LARGE")
			}
			t.Logf("client sent %d of %d bytes before the server closed", body.read.Load(), size)
			// What the client could push into loopback socket buffers
			// before the server closed: a few MB at most, not the body.
			if read := body.read.Load(); read > limit+32<<20 {
				t.Fatalf("%d of %d bytes were sent; the server kept reading past the %d limit", read, size, limit)
			}
			if grew := after.TotalAlloc - before.TotalAlloc; grew > 16<<20 {
				t.Fatalf("the request allocated %d bytes", grew)
			}
		})
	}
	// The announced-length case answers the error itself.
	res := mediaDo(t, "POST", n.URL+mediaLegacy+"/upload", alice.Token, "", &countingBody{left: limit + 1}, limit+1)
	if res.status != -1 {
		expectMedia(t, res, 413, "M_TOO_LARGE")
	}
	upload(t, n, alice.Token, "", "", randomData(t, limit)) // exactly the limit
}

func TestMediaQuota(t *testing.T) {
	n := testnode.Start(t, testnode.Options{Configure: func(c *app.Config) {
		c.Media.Limits.MaxUploadBytes = 1000
		c.Media.Limits.UserQuotaBytes = 1500
	}})
	alice, bob := n.Register("alice"), n.Register("bob")
	upload(t, n, alice.Token, "", "", randomData(t, 1000))
	b := randomData(t, 1000)
	expectMedia(t, mediaDo(t, "POST", n.URL+mediaLegacy+"/upload", alice.Token, "", bytes.NewReader(b), int64(len(b))), 403, "M_RESOURCE_LIMIT_EXCEEDED")
	expectMedia(t, mediaDo(t, "POST", n.URL+mediaLegacy+"/upload", alice.Token, "", bytes.NewReader(b), -1), 403, "M_RESOURCE_LIMIT_EXCEEDED")
	upload(t, n, bob.Token, "", "", b) // a quota per user
}

func TestMediaThumbnails(t *testing.T) {
	n := testnode.Start(t, testnode.Options{})
	alice := n.Register("alice")
	server, id := upload(t, n, alice.Token, "image/png", "", testPNG(t, 400, 200))
	for _, c := range []struct {
		query        string
		wantW, wantH int
	}{
		{"width=100&height=100&method=scale", 100, 50},
		{"width=100&height=100", 100, 50}, // scale by default
		{"width=96&height=96&method=crop", 96, 96},
		{"width=96&height=96&method=crop&animated=true", 96, 96},
	} {
		res := mediaDo(t, "GET", n.URL+mediaV1+"/thumbnail/"+server+"/"+id+"?"+c.query, alice.Token, "", nil, 0)
		expectMedia(t, res, 200, "")
		cfg, err := png.DecodeConfig(bytes.NewReader(res.body))
		if err != nil {
			t.Fatalf("%s: %v", c.query, err)
		}
		if cfg.Width != c.wantW || cfg.Height != c.wantH {
			t.Errorf("%s: %dx%d, want %dx%d", c.query, cfg.Width, cfg.Height, c.wantW, c.wantH)
		}
		if res.header.Get("Content-Type") != "image/png" || res.header.Get("Content-Disposition") != "inline; filename=thumbnail.png" {
			t.Errorf("%s: headers %v", c.query, res.header)
		}
	}
}

// TestMediaThumbnailBomb: a tiny PNG announcing 20000x20000 pixels gets
// 413 M_TOO_LARGE, without the node allocating anything near its size.
func TestMediaThumbnailBomb(t *testing.T) {
	n := testnode.Start(t, testnode.Options{})
	alice := n.Register("alice")
	server, id := upload(t, n, alice.Token, "image/png", "", pngBomb(20000, 20000))
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	res := mediaDo(t, "GET", n.URL+mediaV1+"/thumbnail/"+server+"/"+id+"?width=320&height=240", alice.Token, "", nil, 0)
	runtime.ReadMemStats(&after)
	expectMedia(t, res, 413, "M_TOO_LARGE")
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 32<<20 {
		t.Fatalf("refusing the bomb allocated %d bytes", grew)
	}
	// The file itself still downloads.
	expectMedia(t, mediaDo(t, "GET", n.URL+mediaV1+"/download/"+server+"/"+id, alice.Token, "", nil, 0), 200, "")
}

// TestMediaLegacyFreeze: the unauthenticated endpoints serve media
// uploaded before the freeze and answer 404 M_NOT_FOUND for media
// uploaded after it; the authenticated ones serve both.
func TestMediaLegacyFreeze(t *testing.T) {
	dir := t.TempDir()
	n := testnode.Start(t, testnode.Options{Dir: dir})
	alice := n.Register("alice")
	server, before := upload(t, n, alice.Token, "image/png", "", testPNG(t, 20, 20))
	expectMedia(t, mediaDo(t, "GET", n.URL+mediaLegacy+"/download/"+server+"/"+before, "", "", nil, 0), 200, "")
	n.Stop()
	n = testnode.Start(t, testnode.Options{Dir: dir, Configure: func(c *app.Config) { c.Media.FreezeUnauthenticated = true }})
	_, after := upload(t, n, alice.Token, "image/png", "", testPNG(t, 21, 21))
	for _, c := range []struct {
		path, token string
		status      int
	}{
		{mediaLegacy + "/download/" + server + "/" + before, "", 200},
		{mediaLegacy + "/thumbnail/" + server + "/" + before + "?width=8&height=8", "", 200},
		{mediaLegacy + "/download/" + server + "/" + after, "", 404},
		{mediaLegacy + "/download/" + server + "/" + after + "/x.png", "", 404},
		{mediaLegacy + "/thumbnail/" + server + "/" + after + "?width=8&height=8", "", 404},
		{mediaV1 + "/download/" + server + "/" + after, alice.Token, 200},
		{mediaV1 + "/thumbnail/" + server + "/" + after + "?width=8&height=8", alice.Token, 200},
	} {
		res := mediaDo(t, "GET", n.URL+c.path, c.token, "", nil, 0)
		want := ""
		if c.status == 404 {
			want = "M_NOT_FOUND"
		}
		if res.status != c.status || res.errcode() != want {
			t.Errorf("%s: %d %s, want %d", c.path, res.status, res.errcode(), c.status)
		}
	}
}

// TestAdminMediaUsage: GET .../admin/edgenode/media reports the media
// store's disk use to administrators only.
func TestAdminMediaUsage(t *testing.T) {
	n := testnode.Start(t, testnode.Options{})
	alice := n.Register("alice")
	root, err := n.App.Node.Register(context.Background(), node.RegisterRequest{Localpart: "root", Admin: true})
	if err != nil {
		t.Fatal(err)
	}
	data := randomData(t, 4000)
	upload(t, n, alice.Token, "", "", data)
	upload(t, n, alice.Token, "", "", data) // the same bytes: one file
	const path = "/_matrix/client/v1/admin/edgenode/media"
	expectMedia(t, mediaDo(t, "GET", n.URL+path, alice.Token, "", nil, 0), 403, "M_FORBIDDEN")
	res := mediaDo(t, "GET", n.URL+path, root.AccessToken, "", nil, 0)
	expectMedia(t, res, 200, "")
	for k, want := range map[string]float64{"local_bytes": 8000, "local_files": 2, "disk_bytes": 4000, "disk_files": 1, "remote_bytes": 0} {
		if got := res.field(k); got != want {
			t.Errorf("%s = %v, want %v (body %s)", k, got, want, res.body)
		}
	}
}

// TestMediaVisibleOnlyWhenComplete: while a PUT to a created media ID is
// still streaming, a download answers 504 M_NOT_YET_UPLOADED (never a
// partial file); a download waiting with timeout_ms gets the whole file
// once the upload ends.
func TestMediaVisibleOnlyWhenComplete(t *testing.T) {
	n := testnode.Start(t, testnode.Options{})
	alice := n.Register("alice")
	res := mediaDo(t, "POST", n.URL+"/_matrix/media/v1/create", alice.Token, "", nil, 0)
	expectMedia(t, res, 200, "")
	uri, _ := res.field("content_uri").(string)
	server, id, _ := strings.Cut(strings.TrimPrefix(uri, "mxc://"), "/")
	data := randomData(t, 1<<20)
	pr, pw := io.Pipe()
	putDone := make(chan mediaResponse, 1)
	go func() {
		putDone <- mediaDo(t, "PUT", n.URL+mediaLegacy+"/upload/"+server+"/"+id, alice.Token, "application/octet-stream", pr, int64(len(data)))
	}()
	if _, err := pw.Write(data[:len(data)/2]); err != nil { // returns once the server has read it
		t.Fatal(err)
	}
	expectMedia(t, mediaDo(t, "GET", n.URL+mediaV1+"/download/"+server+"/"+id+"?timeout_ms=0", alice.Token, "", nil, 0), 504, "M_NOT_YET_UPLOADED")
	waited := make(chan mediaResponse, 1)
	go func() {
		waited <- mediaDo(t, "GET", n.URL+mediaV1+"/download/"+server+"/"+id+"?timeout_ms=60000", alice.Token, "", nil, 0)
	}()
	if _, err := pw.Write(data[len(data)/2:]); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	expectMedia(t, <-putDone, 200, "")
	got := <-waited
	expectMedia(t, got, 200, "")
	if !bytes.Equal(got.body, data) {
		t.Fatalf("waiting download got %d bytes, not the upload", len(got.body))
	}
}
