//go:build unix

package crashtest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgenode/edgenode/kv"
	"github.com/edgenode/edgenode/media"
)

// ackedUpload is an upload the node answered 200: it must survive any crash.
type ackedUpload struct {
	id   string
	data []byte
}

// TestKillRestartKeepsAcknowledgedUploads kills the node with SIGKILL while
// clients upload media concurrently, restarts it, and checks that every
// acknowledged upload downloads byte-identical, that no temporary file is
// left once the node's start-up sweep has run, and that every content file
// on disk is complete (its SHA-256 is its name) and referenced by the index
// (after a clean stop, the index's count of files is the count on disk, and
// opening the store removes nothing).
func TestKillRestartKeepsAcknowledgedUploads(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary; skipped under -short")
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))

	bin := buildBinary(t)
	dataDir := t.TempDir()
	p := startNode(t, bin, dataDir, 0)
	var reg struct {
		AccessToken string `json:"access_token"`
	}
	if err := call(p.url, "POST", "/_matrix/client/v3/register", "", map[string]any{
		"username": "uploader", "password": "crash-test-pw", "auth": map[string]any{"type": "m.login.dummy"},
	}, &reg); err != nil {
		p.fatalf("register: %v", err)
	}
	var acked []ackedUpload
	for cycle := range 3 {
		delay := 100*time.Millisecond + time.Duration(rng.Int64N(int64(time.Second)))
		got := uploadUntilKilled(t, p, reg.AccessToken, seed+uint64(cycle), delay)
		t.Logf("cycle %d: killed after %v; %d uploads acknowledged", cycle, delay, len(got))
		acked = append(acked, got...)
		p = startNode(t, bin, dataDir, cycle+1)
		checkMediaDir(t, p, dataDir)
		for _, a := range acked {
			res, err := httpClient.Do(authedGet(p.url+"/_matrix/client/v1/media/download/"+serverOfNode(t, p, reg.AccessToken)+"/"+a.id, reg.AccessToken))
			if err != nil {
				p.fatalf("download %s: %v", a.id, err)
			}
			b, err := io.ReadAll(res.Body)
			res.Body.Close()
			if err != nil || res.StatusCode != http.StatusOK || !bytes.Equal(b, a.data) {
				p.fatalf("acknowledged upload %s: HTTP %d, %d bytes (want %d), identical %v, %v", a.id, res.StatusCode, len(b), len(a.data), bytes.Equal(b, a.data), err)
			}
		}
	}
	p.stop()
	if len(acked) == 0 {
		t.Fatal("no upload was acknowledged; the test checked nothing")
	}
	// The index after a clean stop: every file on disk is referenced.
	onDisk := contentFiles(t, dataDir)
	db, err := kv.Open(context.Background(), kv.Options{Dir: filepath.Join(dataDir, "db"), Profile: mustPhone(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	st, err := media.Open(context.Background(), media.Options{DB: db, Dir: filepath.Join(dataDir, "media"), ServerName: "x", Profile: "phone", SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	u, err := st.Usage(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if after := contentFiles(t, dataDir); len(after) != len(onDisk) || u.DiskFiles != int64(len(onDisk)) {
		t.Fatalf("%d content files on disk, %d after a sweep, %d referenced by the index", len(onDisk), len(after), u.DiskFiles)
	}
}

func mustPhone(t *testing.T) kv.Profile {
	p, err := kv.ProfileByName("phone")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func authedGet(u, token string) *http.Request {
	req, _ := http.NewRequest("GET", u, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	return req
}

// serverOfNode is the node's server name, from whoami.
func serverOfNode(t *testing.T, p *process, token string) string {
	var who struct {
		UserID string `json:"user_id"`
	}
	if err := call(p.url, "GET", "/_matrix/client/v3/account/whoami", token, nil, &who); err != nil {
		p.fatalf("whoami: %v", err)
	}
	return serverOf(who.UserID)
}

// uploadUntilKilled runs uploaders until the node dies (killed after
// delay) and returns the uploads answered 200.
func uploadUntilKilled(t *testing.T, p *process, token string, seed uint64, delay time.Duration) []ackedUpload {
	const uploaders = 3
	var mu sync.Mutex
	var acked []ackedUpload
	var wg sync.WaitGroup
	for u := range uploaders {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(seed, uint64(u)))
			for range 2000 {
				data := make([]byte, 1000+rng.IntN(400_000))
				for i := range data {
					data[i] = byte(rng.Uint32())
				}
				id, err := uploadOnce(p.url, token, data)
				if err != nil {
					return // killed
				}
				mu.Lock()
				acked = append(acked, ackedUpload{id: id, data: data})
				mu.Unlock()
			}
		})
	}
	time.Sleep(delay) // when to crash, not synchronisation: any moment is a valid test
	p.kill()
	wg.Wait()
	return acked
}

func uploadOnce(baseURL, token string, data []byte) (string, error) {
	req, err := http.NewRequest("POST", baseURL+"/_matrix/media/v3/upload?filename=f.bin", bytes.NewReader(data))
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/octet-stream")
	res, err := httpClient.Do(req)
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		return "", err
	}
	if res.StatusCode != http.StatusOK {
		return "", fmt.Errorf("HTTP %d: %s", res.StatusCode, raw)
	}
	var out struct {
		ContentURI string `json:"content_uri"`
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		return "", err
	}
	i := strings.LastIndexByte(out.ContentURI, '/')
	return out.ContentURI[i+1:], nil
}

// checkMediaDir checks, on a node that has just started (its sweep done),
// that no temporary file is left and every content file is complete.
func checkMediaDir(t *testing.T, p *process, dataDir string) {
	t.Helper()
	tmp, err := os.ReadDir(filepath.Join(dataDir, "media", "tmp"))
	if err != nil {
		p.fatalf("%v", err)
	}
	if len(tmp) != 0 {
		p.fatalf("%d temporary files survived the restart's sweep", len(tmp))
	}
	for _, f := range contentFiles(t, dataDir) {
		b, err := os.ReadFile(f)
		if err != nil {
			p.fatalf("%v", err)
		}
		sum := sha256.Sum256(b)
		name := filepath.Base(filepath.Dir(f)) + filepath.Base(f)
		if hex.EncodeToString(sum[:]) != name {
			p.fatalf("content file %s is not whole (%d bytes)", f, len(b))
		}
	}
}

func contentFiles(t *testing.T, dataDir string) []string {
	var out []string
	err := filepath.WalkDir(filepath.Join(dataDir, "media", "content"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			out = append(out, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
