package main

import (
	"flag"
	"io"
	"testing"

	"github.com/edgenode/edgenode/kv"
)

// TestContribConfig: the example Pi config in contrib/ loads (no unknown
// or misspelt keys) and means what its comments say.
func TestContribConfig(t *testing.T) {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cf := addConfigFlags(fs, true)
	if err := fs.Parse([]string{"--config", "../../contrib/edgenode.yaml"}); err != nil {
		t.Fatal(err)
	}
	cfg, err := cf.load()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DataDir != "/var/lib/edgenode" || cfg.StorageProfile != "pi" || cfg.OpenRegistration ||
		!isLoopback(cfg.ClientListen) || len(cfg.P2P.ListenAddrs) != 4 || cfg.P2P.DHTMode != "server" {
		t.Fatalf("contrib config: %+v", cfg)
	}
}

// TestRunDefaultsToPiProfile: with no config, `edgenode run` uses the pi
// profile, and the same name sizes Badger and libp2p (app passes the
// storage profile to p2ptransport).
func TestRunDefaultsToPiProfile(t *testing.T) {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cf := addConfigFlags(fs, true)
	cf.getenv = func(string) string { return "" }
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	cfg, err := cf.load()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.StorageProfile != "pi" || kv.DefaultProfile != "pi" {
		t.Fatalf("default profile %q (kv default %q), want pi", cfg.StorageProfile, kv.DefaultProfile)
	}
	if got := nodeConfig(cfg, nil).StorageProfile; got != "pi" {
		t.Fatalf("node profile %q, want pi", got)
	}
}
