package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/edgenode/edgenode/node"
	"github.com/edgenode/edgenode/node/core"
)

func TestAccountCreate(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	var stdout, stderr bytes.Buffer
	t.Setenv("EDGENODE_PASSWORD", "correct horse")
	code := realMain(ctx, []string{"account", "create", "--data", dir, "--profile", "phone", "--user", "alice"}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d, stderr: %s", code, &stderr)
	}
	userID := strings.TrimSpace(stdout.String())
	if !strings.HasPrefix(userID, "@alice:") {
		t.Fatalf("printed %q, want the user ID @alice:...", userID)
	}

	// The account exists and its password works, on a node with closed registration.
	n, err := node.New(ctx, core.Config{DataDir: dir, StorageProfile: "phone", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close() // idempotent; the explicit Close below frees the directory
	if _, err := n.Login(ctx, userID, "correct horse", "", ""); err != nil {
		t.Fatalf("login as the created account: %v", err)
	}

	// While the node holds the directory, account create fails with advice.
	stdout.Reset()
	stderr.Reset()
	code = realMain(ctx, []string{"account", "create", "--data", dir, "--profile", "phone", "--user", "bob"}, &stdout, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), "in use by another process") {
		t.Fatalf("on a locked data dir: exit %d, stderr %q; want exit 1 and an in-use message", code, &stderr)
	}

	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ user, wantErr string }{
		{"alice", "taken"},                 // reported, not silently ignored
		{userID, "taken"},                  // a full user ID on this node names the same account
		{"@carol:elsewhere", "not a user"}, // another server's user ID is refused
	} {
		stderr.Reset()
		code = realMain(ctx, []string{"account", "create", "--data", dir, "--profile", "phone", "--user", tc.user}, &stdout, &stderr)
		if code != 1 || !strings.Contains(stderr.String(), tc.wantErr) {
			t.Errorf("--user %s: exit %d, stderr %q; want exit 1 and %q", tc.user, code, &stderr, tc.wantErr)
		}
	}
	stdout.Reset()
	code = realMain(ctx, []string{"account", "create", "--data", dir, "--profile", "phone", "--user", "@dave:" + strings.SplitN(userID, ":", 2)[1]}, &stdout, &stderr)
	if code != 0 || !strings.HasPrefix(stdout.String(), "@dave:") {
		t.Errorf("--user with a full local user ID: exit %d, stdout %q, stderr %q", code, &stdout, &stderr)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		nil,
		{"frobnicate"},
		{"account"},
		{"account", "create"}, // no --user
		{"run", "stray"},
		{"run", "--no-such-flag"},
	} {
		var out, errOut bytes.Buffer
		if code := realMain(context.Background(), args, &out, &errOut); code != 2 {
			t.Errorf("%q: exit %d, want 2 (stderr %q)", args, code, &errOut)
		}
	}
	var out bytes.Buffer
	if code := realMain(context.Background(), []string{"version"}, &out, io.Discard); code != 0 || !strings.HasPrefix(out.String(), "edgenode ") {
		t.Errorf("version: exit %d, output %q", code, &out)
	}
	if code := realMain(context.Background(), []string{"run", "-h"}, io.Discard, io.Discard); code != 0 {
		t.Errorf("run -h: exit %d, want 0", code)
	}
}

// TestRunServesAndStops runs "edgenode run" in process on a free port, checks
// the client API answers, and checks cancelling (as a signal does) shuts it
// down cleanly.
func TestRunServesAndStops(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() {
		done <- realMain(ctx, []string{"run", "--data", t.TempDir(), "--client-listen", "127.0.0.1:0", "--profile", "phone", "--log-level", "error", "--mdns=false", "--p2p-listen", "/ip4/127.0.0.1/udp/0/quic-v1"}, pw, io.Discard)
		pw.Close()
	}()
	baseURL := ""
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		if u, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "base URL:"); ok {
			baseURL = strings.TrimSpace(u)
			break
		}
	}
	if baseURL == "" {
		t.Fatalf("no base URL printed; exit code %d", <-done)
	}
	go io.Copy(io.Discard, pr) // keep draining so the command never blocks on stdout

	// Any client path is answered in Matrix form, even one that does not exist.
	res, err := http.Get(baseURL + "/_matrix/client/v3/no-such-endpoint")
	if err != nil {
		t.Fatal(err)
	}
	var body struct{ Errcode string }
	err = json.NewDecoder(res.Body).Decode(&body)
	res.Body.Close()
	if err != nil || body.Errcode == "" {
		t.Fatalf("GET unknown endpoint: status %d, decode err %v, errcode %q", res.StatusCode, err, body.Errcode)
	}

	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("run exited %d after shutdown, want 0", code)
		}
	case <-time.After(shutdownTimeout + 10*time.Second):
		t.Fatal("run did not stop after cancellation")
	}
}
