package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/edgenode/edgenode/p2ptransport"
)

// testPeerAddr returns a QUIC multiaddr of a new ed25519 peer and the
// peer's server name.
func testPeerAddr(t *testing.T, port string) (addr, name string) {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	name = hex.EncodeToString(pub)
	id, err := p2ptransport.PeerFromServerName(name)
	if err != nil {
		t.Fatal(err)
	}
	return "/ip4/192.0.2.1/udp/" + port + "/quic-v1/p2p/" + id.String(), name
}

func runMain(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = realMain(context.Background(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestPeerAddAndList(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data") // not created yet: add creates it
	addr1, name1 := testPeerAddr(t, "4001")
	addr2, name2 := testPeerAddr(t, "4002")

	for _, tc := range []struct{ addr, name string }{{addr1, name1}, {addr2, name2}} {
		code, out, errOut := runMain(t, "peer", "add", "--data", dir, tc.addr)
		if code != 0 || strings.TrimSpace(out) != tc.name {
			t.Fatalf("peer add %s: exit %d, stdout %q, stderr %q; want 0 and the server name %s", tc.addr, code, out, errOut, tc.name)
		}
	}
	// Adding again is not an error and saves nothing twice.
	code, out, errOut := runMain(t, "peer", "add", "--data", dir, addr1)
	if code != 0 || strings.TrimSpace(out) != name1 || !strings.Contains(errOut, "already saved") {
		t.Fatalf("second add: exit %d, stdout %q, stderr %q", code, out, errOut)
	}

	code, out, errOut = runMain(t, "peer", "list", "--data", dir)
	want := name1 + " " + addr1 + "\n" + name2 + " " + addr2 + "\n"
	if code != 0 || out != want {
		t.Fatalf("peer list: exit %d, stdout %q, stderr %q; want %q", code, out, errOut, want)
	}
}

func TestPeerAddRejects(t *testing.T) {
	dir := t.TempDir()
	addr, _ := testPeerAddr(t, "4001")
	for _, tc := range []struct {
		name     string
		args     []string
		wantCode int
		wantErr  string
	}{
		{"no /p2p/", []string{"/ip4/192.0.2.1/udp/4001/quic-v1"}, 1, "not a peer address"},
		{"not a multiaddr", []string{"example.org:8448"}, 1, "not a peer address"},
		{"peer ID is not ed25519", []string{"/ip4/192.0.2.1/tcp/4001/p2p/QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N"}, 1, "not a peer address"},
		{"no address", nil, 2, "takes 1 argument"},
		{"two addresses", []string{addr, addr}, 2, "takes 1 argument"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runMain(t, append([]string{"peer", "add", "--data", dir}, tc.args...)...)
			if code != tc.wantCode || !strings.Contains(errOut, tc.wantErr) || out != "" {
				t.Fatalf("exit %d, stdout %q, stderr %q; want exit %d and %q", code, out, errOut, tc.wantCode, tc.wantErr)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, peersFile)); !os.IsNotExist(err) {
		t.Fatalf("a rejected address left a peers file (stat: %v)", err)
	}
	if code, _, _ := runMain(t, "peer"); code != 2 {
		t.Fatalf("peer without subcommand: exit %d, want 2", code)
	}
	if code, _, _ := runMain(t, "peer", "list", "--data", dir, "extra"); code != 2 {
		t.Fatalf("peer list with an argument: exit %d, want 2", code)
	}
}

func TestRunUsesSavedPeers(t *testing.T) {
	dir := t.TempDir()
	saved, _ := testPeerAddr(t, "4001")
	flagged, _ := testPeerAddr(t, "4002")
	if _, _, err := savePeer(dir, saved); err != nil {
		t.Fatal(err)
	}
	load := func(args ...string) Config {
		t.Helper()
		fs := flag.NewFlagSet("run", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		cf := addConfigFlags(fs, true)
		if err := fs.Parse(append([]string{"--data", dir}, args...)); err != nil {
			t.Fatal(err)
		}
		cfg, err := cf.load()
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}

	pc, err := p2pConfig(load("--peer", flagged, "--peer", saved, "--relay", flagged, "--dht-mode", "client"))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{flagged, saved}; !slices.Equal(pc.StaticPeers, want) {
		t.Fatalf("static peers %q, want the flag's then the saved ones, once each: %q", pc.StaticPeers, want)
	}
	if !pc.DHT || pc.DHTMode != "client" || !pc.MDNS || !slices.Equal(pc.Relays, []string{flagged}) || pc.RelayService {
		t.Fatalf("p2p config %+v does not follow the flags and defaults", pc)
	}

	if pc, err := p2pConfig(load("--no-p2p")); err != nil || pc != nil {
		t.Fatalf("--no-p2p: %+v, %v; want no p2p config", pc, err)
	}

	// A broken hand edit is reported at start rather than ignored.
	if err := os.WriteFile(filepath.Join(dir, peersFile), []byte("# mine\n\n"+saved+"\nnot-an-address\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := p2pConfig(load()); err == nil || !strings.Contains(err.Error(), "line 4") {
		t.Fatalf("broken peers file: %v, want an error naming line 4", err)
	}
}
