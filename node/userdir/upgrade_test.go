package userdir_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/edgenode/edgenode/internal/testnet"
	"github.com/edgenode/edgenode/kv"
	"github.com/edgenode/edgenode/node"
)

// TestUserDirectoryBuiltOnUpgrade: a node whose rooms were made before it
// had a user directory (its tables removed here) indexes them when it
// opens, and its users find each other.
func TestUserDirectoryBuiltOnUpgrade(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	n := testnet.OpenNodeUnclosed(t, testnet.FastNodeConfig(dir))
	alice := testnet.Register(ctx, t, n, "alice")
	bob := testnet.Register(ctx, t, n, "bob")
	testnet.PublicRoom(ctx, t, n, bob.UserID)
	find := func(n *node.Node) int {
		t.Helper()
		res, err := n.SearchUserDirectory(ctx, alice.UserID, "bob", 10)
		if err != nil {
			t.Fatal(err)
		}
		return len(res.Results)
	}
	if got := find(n); got != 1 {
		t.Fatalf("before: %d results", got)
	}
	err := n.DB.Update(func(tx *kv.Txn) error {
		var keys [][]byte
		for _, table := range []string{"udmember", "udtoken", "udroom", "udmeta", "udpending"} {
			err := tx.Each(kv.Scan{Prefix: kv.Key(table), KeysOnly: true}, func(k, _ []byte) (bool, error) {
				keys = append(keys, bytes.Clone(k))
				return true, nil
			})
			if err != nil {
				return err
			}
		}
		for _, k := range keys {
			if err := tx.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := find(n); got != 0 {
		t.Fatalf("tables not removed: %d results", got)
	}
	n.Close()
	n = testnet.OpenNode(t, testnet.FastNodeConfig(dir))
	if got := find(n); got != 1 {
		t.Fatalf("after reopening: %d results, want bob", got)
	}
}
