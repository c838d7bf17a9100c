package testnet

import (
	"context"
	"log/slog"
	"testing"

	"github.com/edgenode/edgenode/node"
	"github.com/edgenode/edgenode/node/core"
)

// NodeConfig is the configuration tests start a node from: the data
// directory dir, phone-sized storage and logs discarded. Callers set what
// their test needs beside it (OpenRegistration, NoSyncWrites, limits).
func NodeConfig(dir string) core.Config {
	return core.Config{
		DataDir: dir, StorageProfile: "phone",
		Logger: slog.New(slog.DiscardHandler),
	}
}

// FastNodeConfig is NodeConfig without an fsync per write: what tests of
// federation and sync want, where nothing crashes and durability across a
// power cut is not what they check.
func FastNodeConfig(dir string) core.Config {
	cfg := NodeConfig(dir)
	cfg.NoSyncWrites = true
	return cfg
}

// OpenNode opens a node with cfg and closes it when the test ends.
func OpenNode(tb testing.TB, cfg core.Config) *node.Node {
	tb.Helper()
	n := OpenNodeUnclosed(tb, cfg)
	tb.Cleanup(func() { n.Close() })
	return n
}

// OpenNodeUnclosed opens a node with cfg, for tests that close it
// themselves (to reopen the same directory).
func OpenNodeUnclosed(tb testing.TB, cfg core.Config) *node.Node {
	tb.Helper()
	n, err := node.New(context.Background(), cfg)
	if err != nil {
		tb.Fatalf("node.New: %v", err)
	}
	return n
}
