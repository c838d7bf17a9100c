package inbound

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/edgenode/edgenode/internal/identity"
	"github.com/edgenode/edgenode/node/core"
	"github.com/matrix-org/gomatrixserverlib"
	"github.com/matrix-org/gomatrixserverlib/spec"
)

// TestStoreOutliersMany: storing as many outliers as one /event_auth answer
// may bring (maxFetchedAuthChain), each under Badger's value threshold so
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
	evs := make([]gomatrixserverlib.PDU, 0, maxFetchedAuthChain)
	prev := auth[2]
	for i := range maxFetchedAuthChain {
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
