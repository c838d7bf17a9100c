package inbound

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/edgenode/edgenode/kv"
	"github.com/edgenode/edgenode/node/core"
	"github.com/matrix-org/gomatrixserverlib"
)

// The tests here run the room core with its inbound side and nothing else:
// what they look at (remote joins, outliers, pending-join lists) is this
// package's, and room input trusts the caller's identity, so they need no
// accounts. Tests through a whole node are node's.

// testConfig is the configuration node's tests use too: open registration,
// the phone profile, logs discarded, synchronous writes on (the default).
func testConfig(dir string) core.Config {
	return core.Config{
		DataDir: dir, OpenRegistration: true, StorageProfile: "phone",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
}

// newTestInbound opens a room core and its inbound side on a fresh
// directory (with cfg changed by mod first) and closes it when the test
// ends.
func newTestInbound(t testing.TB, mod func(*core.Config)) *Inbound {
	t.Helper()
	cfg := testConfig(t.TempDir())
	if mod != nil {
		mod(&cfg)
	}
	n := openInbound(t, cfg)
	t.Cleanup(func() { n.Close() })
	return n
}

// openInbound opens a room core with cfg and its inbound side as node.New
// wires them (no remote; abandoned joins dropped); the caller closes it.
func openInbound(t testing.TB, cfg core.Config) *Inbound {
	t.Helper()
	ctx := context.Background()
	c, err := core.Open(ctx, cfg)
	if err != nil {
		t.Fatalf("core.Open: %v", err)
	}
	n := New(c, nil)
	c.SetFederation(n.CoreFederation())
	if err := n.DropAbandonedJoins(ctx); err != nil {
		c.Close()
		t.Fatalf("DropAbandonedJoins: %v", err)
	}
	return n
}

// userID is localpart's user ID on n.
func userID(n *Inbound, localpart string) string { return "@" + localpart + ":" + n.ServerName() }

// countKeys counts the keys of one table.
func countKeys(t testing.TB, n *Inbound, table string) int {
	t.Helper()
	return countPrefix(t, n, kv.Key(table))
}

// countPrefix counts the keys under a prefix.
func countPrefix(t testing.TB, n *Inbound, prefix []byte) int {
	t.Helper()
	count, err := n.DB.Count(prefix)
	if err != nil {
		t.Fatalf("count keys under %q: %v", prefix, err)
	}
	return count
}

// directJoiner is a RemoteJoiner that calls a resident server's inbound
// side in-process.
type directJoiner struct {
	joining, resident *Inbound
}

func (d directJoiner) MakeJoin(ctx context.Context, server, roomID, userID string) (gomatrixserverlib.ProtoEvent, gomatrixserverlib.RoomVersion, error) {
	tmpl, err := d.resident.MakeJoin(ctx, roomID, userID, []string{"10", "11"})
	if err != nil {
		return gomatrixserverlib.ProtoEvent{}, "", err
	}
	return tmpl.Event, tmpl.RoomVersion, nil
}

func (d directJoiner) SendJoin(ctx context.Context, server string, join gomatrixserverlib.PDU) (RemoteJoinState, error) {
	res, err := d.resident.SendJoin(ctx, d.joining.ServerName(), join.RoomID().String(), join.EventID(), join.JSON())
	if err != nil {
		return RemoteJoinState{}, err
	}
	return RemoteJoinState{State: res.State, AuthChain: res.AuthChain}, nil
}

// joinOnly is a Remote that only joins: the other parts are nil, so a test
// that reaches them panics rather than passing on a network it did not set
// up.
type joinOnly struct {
	RemoteJoiner
	RemoteLeaver
	RemoteInviter
	RemoteQuerier
	EventFetcher
}

// sameStateSize fails t unless a and b hold as many current state events
// of roomID.
func sameStateSize(ctx context.Context, t *testing.T, a, b *Inbound, roomID string) {
	t.Helper()
	aState, err := a.CurrentState(ctx, roomID)
	if err != nil {
		t.Fatal(err)
	}
	bState, err := b.CurrentState(ctx, roomID)
	if err != nil {
		t.Fatal(err)
	}
	if len(aState) != len(bState) {
		t.Fatalf("A has %d state events, B %d", len(aState), len(bState))
	}
}
