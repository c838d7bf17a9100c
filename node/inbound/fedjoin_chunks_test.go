package inbound

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/edgenode/edgenode/internal/identity"
	"github.com/edgenode/edgenode/node/core"
	"github.com/matrix-org/gomatrixserverlib"
	"github.com/matrix-org/gomatrixserverlib/spec"
)

// newTestInbound opens a room core on a fresh directory, as node's tests
// configure theirs (the phone profile, logs discarded) after mod, with its
// inbound side and no remote, and closes it when the test ends. Room input
// trusts the caller's identity, so tests about rooms need no accounts.
func newTestInbound(t testing.TB, mod func(*core.Config)) *Inbound {
	t.Helper()
	cfg := core.Config{
		DataDir: t.TempDir(), OpenRegistration: true, StorageProfile: "phone",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if mod != nil {
		mod(&cfg)
	}
	c, err := core.Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("core.Open: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	n := New(c, nil)
	c.SetFederation(n.CoreFederation())
	return n
}

// TestStoreOutliersMany: storing as many outliers as one /event_auth answer
// may bring (MaxFetchedAuthChain), each under Badger's value threshold so
// that it counts in full, succeeds on the phone profile and stores them
// all. In one transaction it was ErrTxnTooBig.
func TestStoreOutliersMany(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	n := newTestInbound(t, func(c *core.Config) { c.NoSyncWrites = true })
	alice := "@alice:" + n.ServerName()
	roomID, err := n.CreateRoom(ctx, core.CreateRoomRequest{Creator: alice, Preset: core.PresetPublicChat})
	if err != nil {
		t.Fatal(err)
	}
	var auth []string
	for _, k := range []core.StateKey{{EventType: spec.MRoomCreate}, {EventType: spec.MRoomPowerLevels}, {EventType: spec.MRoomMember, StateKey: alice}} {
		ev, err := n.CurrentStateEvent(ctx, roomID, k.EventType, k.StateKey)
		if err != nil {
			t.Fatal(err)
		}
		auth = append(auth, ev.PDU.EventID())
	}
	verImpl, err := gomatrixserverlib.GetRoomVersion(core.DefaultRoomVersion)
	if err != nil {
		t.Fatal(err)
	}
	pad := strings.Repeat("x", 700)
	evs := make([]gomatrixserverlib.PDU, 0, MaxFetchedAuthChain)
	prev := auth[2]
	for i := range MaxFetchedAuthChain {
		ev, err := verImpl.NewEventBuilderFromProtoEvent(&gomatrixserverlib.ProtoEvent{
			SenderID: alice, RoomID: roomID, Type: "m.room.message", PrevEvents: []string{prev}, AuthEvents: auth,
			Depth: int64(10 + i), Content: spec.RawJSON(fmt.Sprintf(`{"msgtype":"m.text","body":"%d %s"}`, i, pad)),
		}).Build(n.Now(), spec.ServerName(n.ServerName()), identity.KeyID, n.SigningKey())
		if err != nil {
			t.Fatal(err)
		}
		prev = ev.EventID()
		evs = append(evs, ev)
	}
	if err := n.storeOutliers(ctx, roomID, evs); err != nil {
		t.Fatalf("store %d outliers: %v", len(evs), err)
	}
	ids := make([]string, len(evs))
	for i, ev := range evs {
		ids[i] = ev.EventID()
	}
	if unknown, err := n.unknownEvents(ids, nil); err != nil || len(unknown) != 0 {
		t.Fatalf("%d of %d outliers not stored (%v)", len(unknown), len(ids), err)
	}
	if noState, err := n.prevsWithoutState(ids); err != nil || len(noState) != len(ids) {
		t.Fatalf("%d of %d outliers marked as without state (%v)", len(noState), len(ids), err)
	}
}
