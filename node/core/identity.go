package core

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

const keyFileName = "signing.key"
const pemType = "EDGENODE ED25519 PRIVATE KEY"

// loadOrCreateKey reads the node's ed25519 key from dir, creating it on first
// start. The same key is the libp2p identity, so it must never change.
func loadOrCreateKey(dir string) (ed25519.PrivateKey, error) {
	path := filepath.Join(dir, keyFileName)
	b, err := os.ReadFile(path)
	if err == nil {
		blk, _ := pem.Decode(b)
		if blk == nil || blk.Type != pemType || len(blk.Bytes) != ed25519.SeedSize {
			return nil, fmt.Errorf("node: %s is not an edgenode key", path)
		}
		return ed25519.NewKeyFromSeed(blk.Bytes), nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("node: read key: %w", err)
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("node: generate key: %w", err)
	}
	out := pem.EncodeToMemory(&pem.Block{Type: pemType, Bytes: priv.Seed()})
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, out, 0o600); err != nil {
		return nil, fmt.Errorf("node: write key: %w", err)
	}
	if err := syncFile(tmp); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, path); err != nil {
		return nil, fmt.Errorf("node: write key: %w", err)
	}
	return priv, nil
}

func syncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("node: sync %s: %w", path, err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("node: sync %s: %w", path, err)
	}
	return nil
}
