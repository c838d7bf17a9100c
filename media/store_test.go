package media

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/edgenode/edgenode/kv"
)

const testServer = "local.test"

// testStore is a store on a real Badger database in a temporary directory.
type testStore struct {
	*Store
	db   *kv.DB
	dir  string
	now  time.Time
	mu   sync.Mutex
	opts Options
}

func (ts *testStore) clock() time.Time {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.now
}

func (ts *testStore) advance(d time.Duration) {
	ts.mu.Lock()
	ts.now = ts.now.Add(d)
	ts.mu.Unlock()
}

func openTestStore(t testing.TB, dir string, limits Limits) *testStore {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	db, err := kv.Open(context.Background(), kv.Options{Dir: filepath.Join(dir, "db"), Profile: mustProfile(t, "phone")})
	if err != nil {
		t.Fatal(err)
	}
	ts := &testStore{db: db, dir: filepath.Join(dir, "media"), now: time.Unix(1_800_000_000, 0)}
	ts.opts = Options{DB: db, Dir: ts.dir, ServerName: testServer, Profile: "phone", Limits: limits, SweepInterval: -1, Clock: ts.clock}
	ts.Store, err = Open(context.Background(), ts.opts)
	if err != nil {
		db.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { ts.close(t) })
	return ts
}

func (ts *testStore) close(t testing.TB) {
	if ts.Store == nil {
		return
	}
	ts.Store.Close()
	if err := ts.db.Close(); err != nil {
		t.Error(err)
	}
	ts.Store = nil
}

func mustProfile(t testing.TB, name string) kv.Profile {
	p, err := kv.ProfileByName(name)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func randomBytes(t testing.TB, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func readAll(t testing.TB, c *Content) []byte {
	t.Helper()
	defer c.Close()
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// countingReader produces n bytes (a repeated pattern) and counts what was
// read of it.
type countingReader struct {
	left, read int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	if c.left <= 0 {
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), c.left))
	for i := range p[:n] {
		p[i] = byte(i)
	}
	c.left -= int64(n)
	c.read += int64(n)
	return n, nil
}

// files lists the regular files under dir.
func files(t testing.TB, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			out = append(out, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestPutGetRoundTrip(t *testing.T) {
	ts := openTestStore(t, "", Limits{})
	ctx := context.Background()
	data := randomBytes(t, 300_000)
	rec, err := ts.Put(ctx, Upload{Uploader: "@a:x", ContentType: "image/png", FileName: "cat.png"}, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if !ValidID(rec.ID) || rec.Size != int64(len(data)) {
		t.Fatalf("record %+v", rec)
	}
	c, err := ts.Get(ctx, testServer, rec.ID)
	if err != nil {
		t.Fatal(err)
	}
	if c.ContentType != "image/png" || c.FileName != "cat.png" || c.Uploader != "@a:x" {
		t.Fatalf("record read back %+v", c.Record)
	}
	if got := readAll(t, c); !bytes.Equal(got, data) {
		t.Fatal("content differs")
	}
	// The same bytes again: a new ID, one file.
	rec2, err := ts.Put(ctx, Upload{Uploader: "@b:x"}, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if rec2.ID == rec.ID || rec2.Hash != rec.Hash {
		t.Fatalf("second upload %+v", rec2)
	}
	u, err := ts.Usage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := Usage{LocalBytes: 600_000, LocalFiles: 2, DiskBytes: 300_000, DiskFiles: 1, RemoteCacheBudget: ts.Limits().RemoteCacheBytes}
	if u != want {
		t.Fatalf("usage %+v, want %+v", u, want)
	}
	if n := len(files(t, ts.contentDir())); n != 1 {
		t.Fatalf("%d content files, want 1", n)
	}
}

func TestGetUnknownAndInvalid(t *testing.T) {
	ts := openTestStore(t, "", Limits{})
	ctx := context.Background()
	for _, c := range []struct {
		origin, id string
		want       error
	}{
		{testServer, "nosuchmedia", ErrNotFound},
		{"other.test", "nosuchmedia", ErrNotFound},
		{testServer, "../../db/MANIFEST", ErrInvalidID},
		{testServer, "a/b", ErrInvalidID},
		{testServer, "", ErrInvalidID},
		{testServer, string(bytes.Repeat([]byte("a"), MaxIDLength+1)), ErrInvalidID},
		{"../etc", "abc", ErrInvalidID},
		{testServer, "a.b", ErrInvalidID},
		{testServer, "a\x00b", ErrInvalidID},
	} {
		if _, err := ts.Get(ctx, c.origin, c.id); !errors.Is(err, c.want) {
			t.Errorf("Get(%q, %q) = %v, want %v", c.origin, c.id, err, c.want)
		}
	}
}

// TestPutOverLimitReadsNoFurther: an upload over MaxUploadBytes fails
// with ErrTooLarge having read at most one byte past the limit.
func TestPutOverLimitReadsNoFurther(t *testing.T) {
	const limit = 1 << 20
	ts := openTestStore(t, "", Limits{MaxUploadBytes: limit})
	body := &countingReader{left: 64 << 20}
	_, err := ts.Put(context.Background(), Upload{Uploader: "@a:x"}, body)
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err %v, want ErrTooLarge", err)
	}
	if body.read > limit+1 {
		t.Fatalf("read %d bytes of the body, limit %d", body.read, limit)
	}
	// Announced too large: nothing read at all.
	body = &countingReader{left: 64 << 20}
	if _, err := ts.Put(context.Background(), Upload{Uploader: "@a:x", Size: 64 << 20}, body); !errors.Is(err, ErrTooLarge) || body.read != 0 {
		t.Fatalf("announced size: err %v after reading %d bytes", err, body.read)
	}
	// Exactly the limit is fine.
	if _, err := ts.Put(context.Background(), Upload{Uploader: "@a:x"}, &countingReader{left: limit}); err != nil {
		t.Fatalf("exactly the limit: %v", err)
	}
	if n := len(files(t, ts.tmpDir())); n != 0 {
		t.Fatalf("%d temporary files left", n)
	}
}

func TestQuotas(t *testing.T) {
	ts := openTestStore(t, "", Limits{MaxUploadBytes: 1000, UserQuotaBytes: 2500, TotalQuotaBytes: 4000})
	ctx := context.Background()
	put := func(user string, n int) error {
		_, err := ts.Put(ctx, Upload{Uploader: user}, bytes.NewReader(randomBytes(t, n)))
		return err
	}
	for i, c := range []struct {
		user string
		n    int
		want error
	}{
		{"@a:x", 1000, nil},
		{"@a:x", 1000, nil},
		{"@a:x", 1000, ErrQuota}, // 3000 > 2500
		{"@a:x", 500, nil},       // exactly 2500
		{"@a:x", 1, ErrQuota},
		{"@b:x", 1001, ErrTooLarge},
		{"@b:x", 1000, nil},
		{"@b:x", 600, ErrQuota}, // total 4100 > 4000
		{"@b:x", 500, nil},
	} {
		if err := put(c.user, c.n); !errors.Is(err, c.want) || (c.want == nil && err != nil) {
			t.Fatalf("case %d: %s uploading %d: %v, want %v", i, c.user, c.n, err, c.want)
		}
	}
	if n, _ := ts.UserUsage(ctx, "@a:x"); n != 2500 {
		t.Fatalf("usage of @a:x %d", n)
	}
}

func TestPendingUploads(t *testing.T) {
	ts := openTestStore(t, "", Limits{MaxPendingPerUser: 2, PendingTTL: time.Hour})
	ctx := context.Background()
	id, exp, err := ts.Create(ctx, "@a:x")
	if err != nil {
		t.Fatal(err)
	}
	if !exp.Equal(ts.clock().Add(time.Hour)) {
		t.Fatalf("expires %v", exp)
	}
	if _, err := ts.Get(ctx, testServer, id); !errors.Is(err, ErrNotYetUploaded) {
		t.Fatalf("Get of pending: %v", err)
	}
	if _, err := ts.PutPending(ctx, id, Upload{Uploader: "@b:x"}, bytes.NewReader([]byte("x"))); !errors.Is(err, ErrForbidden) {
		t.Fatalf("another user's: %v", err)
	}
	id2, _, err := ts.Create(ctx, "@a:x")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := ts.Create(ctx, "@a:x"); !errors.Is(err, ErrPendingLimit) {
		t.Fatalf("third pending: %v", err)
	}
	// A waiter wakes at the upload.
	woke := make(chan error, 1)
	go func() { woke <- ts.WaitUploaded(ctx, id) }()
	if _, err := ts.PutPending(ctx, id, Upload{Uploader: "@a:x"}, bytes.NewReader([]byte("hello"))); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-woke:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("waiter not woken")
	}
	if c, err := ts.Get(ctx, testServer, id); err != nil || string(readAll(t, c)) != "hello" {
		t.Fatalf("after upload: %v", err)
	}
	if _, err := ts.PutPending(ctx, id, Upload{Uploader: "@a:x"}, bytes.NewReader([]byte("again"))); !errors.Is(err, ErrCannotOverwrite) {
		t.Fatalf("second upload: %v", err)
	}
	if _, err := ts.PutPending(ctx, "neverCreated", Upload{Uploader: "@a:x"}, bytes.NewReader(nil)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown ID: %v", err)
	}
	// Expiry: id2 expires, frees its slot, and cannot be uploaded to.
	ts.advance(2 * time.Hour)
	if _, err := ts.PutPending(ctx, id2, Upload{Uploader: "@a:x"}, bytes.NewReader([]byte("late"))); !errors.Is(err, ErrNotFound) {
		t.Fatalf("expired ID: %v", err)
	}
	if _, _, err := ts.Create(ctx, "@a:x"); err != nil {
		t.Fatalf("after expiry: %v", err)
	}
	res, err := ts.Sweep(ctx)
	if err != nil || res.Pending != 0 { // Create already dropped @a's expired one
		t.Fatalf("sweep %+v %v", res, err)
	}
}

// TestSweepRemovesOrphans: what a crash leaves (a temporary file, a
// content file no entry references) goes at the next Open; indexed
// content stays.
func TestSweepRemovesOrphans(t *testing.T) {
	dir := t.TempDir()
	ts := openTestStore(t, dir, Limits{})
	ctx := context.Background()
	data := randomBytes(t, 5000)
	rec, err := ts.Put(ctx, Upload{Uploader: "@a:x"}, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	ts.close(t)
	orphanTemp := filepath.Join(dir, "media", "tmp", "up-123")
	orphan := filepath.Join(dir, "media", "content", "ab", "cdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789")
	for _, p := range []string{orphanTemp, orphan} {
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ts = openTestStore(t, dir, Limits{})
	for _, p := range []string{orphanTemp, orphan} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s survived the sweep: %v", p, err)
		}
	}
	c, err := ts.Get(ctx, testServer, rec.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(readAll(t, c), data) {
		t.Fatal("content changed")
	}
}

func TestRemoteCacheLRU(t *testing.T) {
	ts := openTestStore(t, "", Limits{RemoteCacheBytes: 3000})
	ctx := context.Background()
	put := func(id string, n int) {
		t.Helper()
		if _, err := ts.PutRemote(ctx, "far.test", id, RemoteMeta{ContentType: "image/png"}, bytes.NewReader(randomBytes(t, n)), 0); err != nil {
			t.Fatal(err)
		}
		ts.advance(2 * time.Minute)
	}
	put("one", 1000)
	put("two", 1000)
	put("three", 1000)
	// Reading "one" makes it the most recently used.
	c, err := ts.Get(ctx, "far.test", "one")
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	ts.advance(2 * time.Minute)
	put("four", 1000) // over budget: "two" goes
	for id, want := range map[string]error{"one": nil, "two": ErrNotFound, "three": nil, "four": nil} {
		c, err := ts.Get(ctx, "far.test", id)
		if !errors.Is(err, want) || (want == nil && err != nil) {
			t.Errorf("%s: %v, want %v", id, err, want)
		}
		if c != nil {
			c.Close()
		}
	}
	u, _ := ts.Usage(ctx)
	if u.RemoteBytes != 3000 || u.RemoteFiles != 3 || u.DiskFiles != 3 {
		t.Fatalf("usage %+v", u)
	}
	if n := len(files(t, ts.contentDir())); n != 3 {
		t.Fatalf("%d content files, want 3", n)
	}
	// A budget of zero empties the cache, files too.
	if _, err := ts.EvictRemote(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if n := len(files(t, ts.contentDir())); n != 0 {
		t.Fatalf("%d content files after evicting all", n)
	}
}

// TestPutRemoteCutsOff: a remote body longer than allowed is cut off
// one byte past the limit and nothing is cached.
func TestPutRemoteCutsOff(t *testing.T) {
	ts := openTestStore(t, "", Limits{})
	body := &countingReader{left: 10 << 20}
	_, err := ts.PutRemote(context.Background(), "far.test", "big", RemoteMeta{}, body, 4096)
	if !errors.Is(err, ErrTooLarge) || body.read > 4097 {
		t.Fatalf("err %v, read %d", err, body.read)
	}
	if _, err := ts.Get(context.Background(), "far.test", "big"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("cached anyway: %v", err)
	}
	if _, err := ts.PutRemote(context.Background(), testServer, "mine", RemoteMeta{}, bytes.NewReader(nil), 0); !errors.Is(err, ErrInvalidID) {
		t.Fatalf("own server as remote: %v", err)
	}
}

// TestConcurrentRemoteCache: puts, reads, thumbnails and evictions of
// the remote cache at once leave the index and the directory agreeing:
// every file referenced, no file unreferenced, the cache within budget.
func TestConcurrentRemoteCache(t *testing.T) {
	const budget = 64 << 10
	ts := openTestStore(t, "", Limits{RemoteCacheBytes: budget})
	ctx := context.Background()
	img := encodeTestImage(t, "png", 64, 48)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 40 {
				id := string(rune('a'+w)) + string(rune('a'+i%10))
				var body []byte
				if i%3 == 0 {
					body = img // shared bytes: one file, several entries
				} else {
					body = randomBytes(t, 1000+i*300)
				}
				if _, err := ts.PutRemote(ctx, "far.test", id, RemoteMeta{}, bytes.NewReader(body), 0); err != nil {
					t.Error(err)
					return
				}
				if c, err := ts.Get(ctx, "far.test", id); err == nil {
					io.Copy(io.Discard, c)
					c.Close()
				} else if !errors.Is(err, ErrNotFound) {
					t.Error(err)
				}
				if i%3 == 0 {
					if c, err := ts.Thumbnail(ctx, "far.test", id, ThumbnailSpec{Width: 16, Height: 16, Method: MethodCrop}); err == nil {
						c.Close()
					} else if !errors.Is(err, ErrNotFound) {
						t.Error(err)
					}
				}
				ts.advance(time.Minute)
			}
		})
	}
	wg.Wait()
	u, err := ts.Usage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if u.RemoteBytes > budget {
		t.Errorf("cache holds %d bytes, budget %d", u.RemoteBytes, budget)
	}
	onDisk := files(t, ts.contentDir())
	if int64(len(onDisk)) != u.DiskFiles {
		t.Errorf("%d files on disk, %d referenced", len(onDisk), u.DiskFiles)
	}
	res, err := ts.Sweep(ctx)
	if err != nil || res.Files != 0 {
		t.Errorf("sweep removed %+v (%v): unreferenced files were left", res, err)
	}
	if _, err := ts.EvictRemote(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if u, _ := ts.Usage(ctx); u != (Usage{RemoteCacheBudget: budget}) || len(files(t, ts.contentDir())) != 0 {
		t.Errorf("after evicting all: %+v, %d files", u, len(files(t, ts.contentDir())))
	}
}
