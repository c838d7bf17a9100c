package app

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// clientPortFile, in the data directory, keeps the client API port picked
// when Config.StableClientPort is set: an app's Matrix client, or a
// browser tab, keeps the same base URL across restarts.
const clientPortFile = "client_port"

// listenClient listens on cfg.ClientListen. With StableClientPort and port
// 0 there, it listens on the port kept in the data directory if there is
// one and it is free, otherwise on a new free port, which it keeps.
func listenClient(cfg Config, log *slog.Logger) (net.Listener, error) {
	host, port, err := net.SplitHostPort(cfg.ClientListen)
	if err != nil {
		return nil, fmt.Errorf("client API listen %s: %w", cfg.ClientListen, err)
	}
	if !cfg.StableClientPort || port != "0" {
		ln, err := net.Listen("tcp", cfg.ClientListen)
		if err != nil {
			return nil, fmt.Errorf("client API listen %s: %w", cfg.ClientListen, err)
		}
		return ln, nil
	}
	file := filepath.Join(cfg.Node.DataDir, clientPortFile)
	kept, err := readClientPort(file)
	if err != nil {
		log.Warn("client API: kept port unreadable, picking a new one", "file", file, "err", err)
	}
	if kept != 0 {
		ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(kept)))
		if err == nil {
			return ln, nil
		}
		log.Warn("client API: kept port unavailable, picking a new one", "port", kept, "err", err)
	}
	ln, err := net.Listen("tcp", cfg.ClientListen)
	if err != nil {
		return nil, fmt.Errorf("client API listen %s: %w", cfg.ClientListen, err)
	}
	if err := writeClientPort(file, ln.Addr().(*net.TCPAddr).Port); err != nil {
		// The node works; only the next start's port may differ.
		log.Warn("client API: cannot keep the port", "file", file, "err", err)
	}
	return ln, nil
}

// readClientPort reads a kept port; 0 with no error if none is kept.
func readClientPort(file string) (int, error) {
	b, err := os.ReadFile(file)
	if os.IsNotExist(err) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	p, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || p < 1 || p > 65535 {
		return 0, fmt.Errorf("malformed port %q", b)
	}
	return p, nil
}

// writeClientPort keeps port in file, replacing it whole (a crash leaves
// the old file or the new one, never half of one).
func writeClientPort(file string, port int) error {
	tmp := file + ".tmp"
	if err := os.WriteFile(tmp, []byte(strconv.Itoa(port)+"\n"), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, file)
}
