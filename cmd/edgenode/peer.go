package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/edgenode/edgenode/app"
	"github.com/edgenode/edgenode/p2ptransport"
)

// peersFile is the file in the data directory that "edgenode peer add"
// writes and "edgenode run" reads: one static peer multiaddr a line. A
// plain file beside the database (not in it) so the node need not be
// stopped to add a peer, and so a person can read and edit it.
const peersFile = "peers"

// maxSavedPeers bounds the saved peers; each is dialled at every start.
const maxSavedPeers = 256

const peerUsage = `Usage:
  edgenode peer add [flags] MULTIADDR   save a static peer (ending in /p2p/<peer ID>); prints its server name
  edgenode peer list [flags]            list the saved peers

Saved peers are dialled by "edgenode run" at start, together with --peer and
the config file's peers. A running node picks a new one up when restarted.
`

// peerCmd is "edgenode peer SUBCOMMAND".
func peerCmd(_ context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "add" && args[0] != "list") {
		fmt.Fprint(stderr, peerUsage)
		if len(args) > 0 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help") {
			return flag.ErrHelp
		}
		return errUsage
	}
	sub := args[0]
	fs := flag.NewFlagSet("edgenode peer "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), peerUsage+"\nFlags:\n")
		fs.PrintDefaults()
	}
	cf := addConfigFlags(fs, false)
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	want := map[string]int{"add": 1, "list": 0}[sub]
	if fs.NArg() != want {
		fmt.Fprintf(stderr, "edgenode peer %s takes %d argument(s), got %d\n", sub, want, fs.NArg())
		fs.Usage()
		return errUsage
	}
	cfg, err := cf.load()
	if err != nil {
		return err
	}
	if sub == "list" {
		return listPeers(cfg.DataDir, stdout)
	}
	addr := strings.TrimSpace(fs.Arg(0))
	name, added, err := savePeer(cfg.DataDir, addr)
	if err != nil {
		return err
	}
	if !added {
		fmt.Fprintf(stderr, "%s is already saved\n", addr)
	}
	fmt.Fprintln(stdout, name)
	return nil
}

// listPeers prints the saved peers, "<server name> <multiaddr>" a line.
func listPeers(dataDir string, stdout io.Writer) error {
	peers, err := loadSavedPeers(dataDir)
	if err != nil {
		return err
	}
	for _, p := range peers {
		name, _ := p2ptransport.PeerAddrServerName(p) // validated by loadSavedPeers
		fmt.Fprintf(stdout, "%s %s\n", name, p)
	}
	return nil
}

// savePeer validates addr and appends it to the peers file unless it is
// there already. It returns the peer's server name.
func savePeer(dataDir, addr string) (name string, added bool, err error) {
	name, err = p2ptransport.PeerAddrServerName(addr)
	if err != nil {
		return "", false, fmt.Errorf("not a peer address (want a multiaddr ending in /p2p/<peer ID> of an edgenode node, as printed by edgenode run): %w", err)
	}
	peers, err := loadSavedPeers(dataDir)
	if err != nil {
		return "", false, err
	}
	if slices.Contains(peers, addr) {
		return name, false, nil
	}
	if len(peers) >= maxSavedPeers {
		return "", false, fmt.Errorf("already %d saved peers, the most kept; remove some from %s", len(peers), filepath.Join(dataDir, peersFile))
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return "", false, fmt.Errorf("data directory: %w", err)
	}
	var buf bytes.Buffer
	for _, p := range append(peers, addr) {
		buf.WriteString(p + "\n")
	}
	// Write then rename, so a crash leaves the old list or the new one.
	path := filepath.Join(dataDir, peersFile)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, buf.Bytes(), 0o600); err != nil {
		return "", false, fmt.Errorf("save peer: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return "", false, fmt.Errorf("save peer: %w", err)
	}
	return name, true, nil
}

// loadSavedPeers reads the peers file of dataDir (none yet is no peers).
// Blank lines and lines starting with # are skipped; any other line must be
// a valid peer address, so a hand edit gone wrong is reported, not ignored.
func loadSavedPeers(dataDir string) ([]string, error) {
	path := filepath.Join(dataDir, peersFile)
	raw, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("saved peers: %w", err)
	}
	var peers []string
	for i, line := range strings.Split(string(raw), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if _, err := p2ptransport.PeerAddrServerName(line); err != nil {
			return nil, fmt.Errorf("saved peers %s line %d: %w", path, i+1, err)
		}
		if len(peers) == maxSavedPeers {
			return nil, fmt.Errorf("saved peers %s: more than %d", path, maxSavedPeers)
		}
		peers = append(peers, line)
	}
	return peers, nil
}

// p2pConfig is the libp2p part of the app configuration for "run": the
// configured static peers and the saved ones (duplicates dropped), and the
// discovery and NAT settings. nil when federation is off.
func p2pConfig(cfg Config) (*app.P2PConfig, error) {
	if cfg.NoP2P {
		return nil, nil
	}
	saved, err := loadSavedPeers(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	pc := &app.P2PConfig{Config: cfg.P2P}
	pc.StaticPeers = slices.Clone(cfg.P2P.StaticPeers)
	for _, p := range saved {
		if !slices.Contains(pc.StaticPeers, p) {
			pc.StaticPeers = append(pc.StaticPeers, p)
		}
	}
	return pc, nil
}
