//go:build unix

package crashtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// startTimeout bounds how long a node may take to start answering. Badger
// replays its value log after a crash, so a restart can be slower than a
// first start; 30 s is generous for the few MiB these tests write.
const startTimeout = 30 * time.Second

// buildBinary builds cmd/edgenode into a temporary directory once per test.
func buildBinary(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go command not found; cannot build the binary under test")
	}
	bin := filepath.Join(t.TempDir(), "edgenode")
	args := []string{"build", "-o", bin}
	if raceEnabled {
		args = append(args, "-race")
	}
	args = append(args, "github.com/edgenode/edgenode/cmd/edgenode")
	out, err := exec.Command(goBin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return bin
}

// process is a running edgenode child.
type process struct {
	t       *testing.T
	cmd     *exec.Cmd
	url     string
	logPath string
	exited  chan struct{} // closed when Wait returns
	waitErr error
	watcher *urlWatcher
}

// peerAddr waits (bounded) for the first peer address the node prints.
func (p *process) peerAddr() string {
	p.t.Helper()
	select {
	case a := <-p.watcher.peers:
		return a
	case <-p.exited:
		p.fatalf("node exited before printing a peer address: %v", p.waitErr)
	case <-time.After(startTimeout):
		p.fatalf("node printed no peer address within %v", startTimeout)
	}
	return ""
}

// startNode runs "edgenode run" on dataDir on a free loopback port and waits
// until it serves /_matrix/client/versions. Without p2pArgs the node runs
// without federation (--no-p2p); with them, it runs with those flags and
// startNode also waits for its peer addresses.
func startNode(t *testing.T, bin, dataDir string, n int, p2pArgs ...string) *process {
	t.Helper()
	logDir := os.Getenv("EDGENODE_TEST_LOGDIR") // to keep the logs after the test
	if logDir == "" {
		logDir = t.TempDir()
	}
	logPath := filepath.Join(logDir, fmt.Sprintf("node%d.log", n))
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close() // the child holds its own descriptor
	urls := make(chan string, 1)
	args := []string{"run", "--data", dataDir, "--client-listen", "127.0.0.1:0",
		"--open-registration", "--profile", "phone", "--log-level", "warn"}
	if len(p2pArgs) == 0 {
		args = append(args, "--no-p2p")
	}
	watcher := &urlWatcher{found: urls, peers: make(chan string, 8)}
	cmd := exec.Command(bin, append(args, p2pArgs...)...)
	cmd.Stdout = watcher
	cmd.Stderr = logFile
	if err := cmd.Start(); err != nil {
		t.Fatalf("start node: %v", err)
	}
	p := &process{t: t, cmd: cmd, logPath: logPath, exited: make(chan struct{}), watcher: watcher}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = cmd.Process.Kill()
			<-p.exited
		}
	})

	deadline := time.NewTimer(startTimeout)
	defer deadline.Stop()
	select {
	case p.url = <-urls:
	case <-p.exited:
		p.fatalf("node %d exited during start-up: %v", n, p.waitErr)
	case <-deadline.C:
		p.fatalf("node %d printed no base URL within %v", n, startTimeout)
	}
	// The URL is printed once the listener is up; poll /versions (bounded) so
	// a node that listens but cannot serve is caught here, not mid-test.
	for {
		res, err := httpClient.Get(p.url + "/_matrix/client/versions")
		if err == nil {
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return p
			}
		}
		select {
		case <-p.exited:
			p.fatalf("node %d exited during start-up: %v", n, p.waitErr)
		case <-deadline.C:
			p.fatalf("node %d: /_matrix/client/versions not answering 200 within %v (last: %v)", n, startTimeout, describe(res, err))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func describe(res *http.Response, err error) string {
	if err != nil {
		return err.Error()
	}
	return res.Status
}

// kill sends SIGKILL: no shutdown code runs, as in a crash or an OOM kill.
func (p *process) kill() {
	p.t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		p.fatalf("SIGKILL: %v", err)
	}
	<-p.exited
}

// stop sends SIGTERM and requires a clean exit (status 0) in bounded time.
func (p *process) stop() {
	p.t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		p.fatalf("SIGTERM: %v", err)
	}
	select {
	case <-p.exited:
	case <-time.After(45 * time.Second): // the command's own shutdown timeout is 30 s
		p.fatalf("node did not exit within 45 s of SIGTERM")
	}
	if p.waitErr != nil {
		p.fatalf("node exited with %v after SIGTERM, want status 0", p.waitErr)
	}
}

// fatalf fails the test with the end of the node's log attached.
func (p *process) fatalf(format string, args ...any) {
	p.t.Helper()
	log, _ := os.ReadFile(p.logPath)
	if len(log) > 8000 {
		log = log[len(log)-8000:]
	}
	p.t.Fatalf(format+"\n--- node log (end):\n%s", append(args, log)...)
}

// urlWatcher is the child's stdout: it reports the "base URL:" and "peer
// address:" lines the run command prints once it listens, and discards the
// rest.
type urlWatcher struct {
	mu    sync.Mutex
	buf   []byte
	found chan<- string
	peers chan string // buffered; addresses beyond its room are dropped
	done  bool
}

func (w *urlWatcher) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return len(b), nil
	}
	w.buf = append(w.buf, b...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			if len(w.buf) > 64<<10 { // no line of interest is this long
				w.done, w.buf = true, nil
			}
			return len(b), nil
		}
		line := strings.TrimSpace(string(w.buf[:i]))
		w.buf = w.buf[i+1:]
		if u, ok := strings.CutPrefix(line, "base URL:"); ok && w.found != nil {
			w.found <- strings.TrimSpace(u)
			w.found = nil
		}
		if a, ok := strings.CutPrefix(line, "peer address:"); ok {
			select {
			case w.peers <- strings.TrimSpace(a):
			default:
			}
		}
	}
}

// httpClient bounds every request: a hung server fails the test instead of
// hanging it.
var httpClient = &http.Client{Timeout: 30 * time.Second}

// errKilled marks a request that failed at the transport (the node died).
var errKilled = errors.New("no response")

// call makes a client API request and decodes a JSON reply into out (if not
// nil). A non-200 status is an error carrying the body.
func call(baseURL, method, path, token string, body, out any) error {
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, baseURL+path, rd)
	if err != nil {
		return err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := httpClient.Do(req)
	if err != nil {
		return fmt.Errorf("%w: %s %s: %v", errKilled, method, path, err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		return fmt.Errorf("%w: %s %s: reading body: %v", errKilled, method, path, err)
	}
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: HTTP %d: %s", method, path, res.StatusCode, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("%s %s: decoding reply: %v: %s", method, path, err, raw)
		}
	}
	return nil
}

// timelineEvent is what the crash tests read of a /messages event.
type timelineEvent struct {
	EventID string `json:"event_id"`
	Type    string `json:"type"`
	Content struct {
		Body string `json:"body"`
	} `json:"content"`
}

// walkTimeline pages back through a room's whole timeline on the node at
// p.url with /messages and returns every event, newest first.
func (p *process) walkTimeline(roomPath, token string) []timelineEvent {
	var all []timelineEvent
	from := ""
	for page := 0; ; page++ {
		if page > 1000 {
			p.fatalf("/messages did not reach the start of the room in 1000 pages")
		}
		q := url.Values{"dir": {"b"}, "limit": {"100"}}
		if from != "" {
			q.Set("from", from)
		}
		var res struct {
			Chunk []timelineEvent `json:"chunk"`
			End   string          `json:"end"`
		}
		if err := call(p.url, "GET", roomPath+"/messages?"+q.Encode(), token, nil, &res); err != nil {
			p.fatalf("/messages after restart: %.300v", err)
		}
		all = append(all, res.Chunk...)
		if res.End == "" || len(res.Chunk) == 0 || res.End == from {
			return all
		}
		from = res.End
	}
}
