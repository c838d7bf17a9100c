package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// nodeProc is a running `edgenode run`.
type nodeProc struct {
	cmd       *exec.Cmd
	base      string   // client API base URL
	peerAddrs []string // its libp2p addresses, ending in /p2p/<peer ID>
	exited    chan error
}

// freePort returns a loopback TCP port that was free a moment ago, so the
// base URL is known before the node prints it.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// startNode starts a node on data and returns once /versions answers, with
// the time from exec to that first answer. env (NAME=value) is added to the
// node's environment; extra are more flags of `edgenode run`.
func startNode(ctx context.Context, bin, data string, env []string, extra ...string) (*nodeProc, time.Duration, error) {
	port, err := freePort()
	if err != nil {
		return nil, 0, err
	}
	if err := os.MkdirAll(data, 0o700); err != nil {
		return nil, 0, err
	}
	logf, err := os.OpenFile(filepath.Join(filepath.Dir(data), "node.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, 0, err
	}
	defer logf.Close() // the child has its own descriptor
	cmd := exec.Command(bin, "run", "--data", data, "--open-registration", "--mdns=false",
		"--client-listen", fmt.Sprintf("127.0.0.1:%d", port),
		"--p2p-listen", "/ip4/127.0.0.1/udp/0/quic-v1", "--p2p-listen", "/ip4/127.0.0.1/tcp/0",
		"--log-level", "warn")
	cmd.Args = append(cmd.Args, extra...)
	cmd.Stderr = logf
	if len(env) > 0 {
		cmd.Env = append(os.Environ(), env...)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, 0, err
	}
	p := &nodeProc{cmd: cmd, base: fmt.Sprintf("http://127.0.0.1:%d", port), exited: make(chan error, 1)}
	addrs := make(chan string, 8)
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, 0, err
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "peer address:"); ok {
				addrs <- strings.TrimSpace(a)
			}
		}
		close(addrs)
		p.exited <- cmd.Wait()
	}()
	client := &http.Client{Timeout: time.Second}
	var took time.Duration
	for {
		resp, err := client.Get(p.base + "/_matrix/client/versions")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				took = time.Since(start)
				break
			}
		}
		if time.Since(start) > time.Minute {
			p.stop()
			return nil, 0, errors.New("node did not serve /versions within a minute (see node.log)")
		}
		time.Sleep(time.Millisecond)
	}
	// Both listen addresses are printed once start-up is complete.
	deadline := time.After(30 * time.Second)
	for len(p.peerAddrs) < 2 {
		select {
		case a, ok := <-addrs:
			if !ok {
				return nil, 0, errors.New("node exited during start-up (see node.log)")
			}
			p.peerAddrs = append(p.peerAddrs, a)
		case <-deadline:
			p.stop()
			return nil, 0, errors.New("node printed no peer addresses")
		case <-ctx.Done():
			p.stop()
			return nil, 0, ctx.Err()
		}
	}
	return p, took, nil
}

// stop sends SIGTERM (a graceful shutdown: the database is closed cleanly)
// and waits for the process.
func (p *nodeProc) stop() error {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.exited:
		return err
	case <-time.After(60 * time.Second):
		_ = p.cmd.Process.Kill()
		return errors.New("node did not stop within 60 s of SIGTERM")
	}
}

// memory is a process's resident set now and its peak, in bytes, and the
// resident set split into anonymous memory (the Go heap, stacks) and
// file-backed pages (Badger's memory-mapped tables, memtables and value
// log), which the kernel can drop under pressure.
type memory struct{ rss, hwm, anon, file int64 }

// readMemory reads VmRSS and VmHWM from /proc/<pid>/status.
func (p *nodeProc) readMemory() (memory, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return memory{}, err
	}
	var m memory
	for _, line := range strings.Split(string(raw), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(v) // "12345 kB"
		if len(f) != 2 {
			continue
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			continue
		}
		switch k {
		case "VmRSS":
			m.rss = n << 10
		case "VmHWM":
			m.hwm = n << 10
		case "RssAnon":
			m.anon = n << 10
		case "RssFile":
			m.file = n << 10
		}
	}
	if m.rss == 0 {
		return memory{}, errors.New("no VmRSS in /proc status")
	}
	return m, nil
}

func hostArch() string { return runtime.GOOS + "/" + runtime.GOARCH }
