package inbound

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/edgenode/edgenode/internal/identity"
	"github.com/edgenode/edgenode/kv"
	"github.com/edgenode/edgenode/node/core"
	"github.com/matrix-org/gomatrixserverlib"
	"github.com/matrix-org/gomatrixserverlib/spec"
)

// crashBeforeJoinCommit runs a remote join of roomID by userID on n through
// j up to the end of its chunked writes and stops there, as a crash just
// before the join's own commit would: the most a crash can leave behind.
func crashBeforeJoinCommit(ctx context.Context, t *testing.T, n *Inbound, j RemoteJoiner, roomID, userID string) {
	t.Helper()
	proto, version, err := j.MakeJoin(ctx, "", roomID, userID)
	if err != nil {
		t.Fatal(err)
	}
	verImpl, err := gomatrixserverlib.GetRoomVersion(version)
	if err != nil {
		t.Fatal(err)
	}
	join, err := verImpl.NewEventBuilderFromProtoEvent(&proto).Build(n.Now(), spec.ServerName(n.ServerName()), identity.KeyID, n.SigningKey())
	if err != nil {
		t.Fatal(err)
	}
	resp, err := j.SendJoin(ctx, "", join)
	if err != nil {
		t.Fatal(err)
	}
	state, outliers, err := n.checkJoinState(ctx, version, join, resp)
	if err != nil {
		t.Fatal(err)
	}
	before := core.StateFromMap(state)
	after := before.With(spec.MRoomMember, userID, join.EventID())
	if _, err := n.prewriteJoin(ctx, roomID, version, before, after, outliers); err != nil {
		t.Fatalf("chunked writes: %v", err)
	}
}

// joinCrashed makes a public room of alice's on node a with members more
// members (@m0000, @m0001, ...), and a remote join of it by bob on node b
// (configured by cfg) stopped just before its commit.
func joinCrashed(ctx context.Context, t *testing.T, members int) (a, b *Inbound, cfg core.Config, alice, bob string, roomID string) {
	t.Helper()
	a = newTestInbound(t, func(c *core.Config) { c.NoSyncWrites = true })
	cfg = testConfig(t.TempDir())
	cfg.NoSyncWrites = true
	b = openInbound(t, cfg)
	alice, bob = userID(a, "alice"), userID(b, "bob")
	roomID, err := a.CreateRoom(ctx, core.CreateRoomRequest{Creator: alice, Preset: core.PresetPublicChat})
	if err != nil {
		t.Fatal(err)
	}
	for i := range members {
		if _, err := a.Join(ctx, userID(a, fmt.Sprintf("m%04d", i)), "D", roomID); err != nil {
			t.Fatal(err)
		}
	}
	crashBeforeJoinCommit(ctx, t, b, directJoiner{joining: b, resident: a}, roomID, bob)
	return a, b, cfg, alice, bob, roomID
}

// TestJoinBigRoomAfterCrash: a remote join of a room too big for one
// transaction on the phone profile writes its state and auth chain in
// chunks before its commit. Stopped after the chunks (a crash before the
// commit), the node, reopened, has no such room: no membership for the
// joiner, the room's events not served over federation; a retried join,
// after the room gained a member, succeeds, and the node indexes the
// room's members and servers as of the retry.
func TestJoinBigRoomAfterCrash(t *testing.T) {
	const members = 300 // two chunks of membership entries, several of events
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	a, b, cfg, alice, bob, roomID := joinCrashed(ctx, t, members)
	createID, err := a.CurrentStateEvent(ctx, roomID, spec.MRoomCreate, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b = openInbound(t, cfg)
	defer b.Close()

	if _, err := b.Membership(ctx, roomID, bob); !errors.Is(err, core.ErrNotFound) {
		t.Fatalf("bob's membership after the crash: %v, want ErrNotFound", err)
	}
	if rooms, err := b.JoinedRooms(ctx, bob); err != nil || len(rooms) != 0 {
		t.Fatalf("bob's rooms after the crash: %v %v", rooms, err)
	}
	if _, err := b.FederationEvent(ctx, a.ServerName(), createID.PDU.EventID()); !errors.Is(err, core.ErrNotFound) {
		t.Fatalf("/event of the half-joined room's create event: %v, want ErrNotFound", err)
	}
	if _, err := b.FederationStateIDs(ctx, a.ServerName(), roomID, createID.PDU.EventID()); !errors.Is(err, core.ErrNotFound) {
		t.Fatalf("/state_ids of the half-joined room: %v, want ErrNotFound", err)
	}

	// What an earlier attempt with another state would have left: a
	// server whose users all left since, and a member entry of it.
	ghost := "@gone:ghost.example"
	err = b.DB.Update(func(tx *kv.Txn) error {
		if err := tx.Set(core.RoomServerKey(roomID, "ghost.example"), binary.BigEndian.AppendUint64(nil, 1)); err != nil {
			return err
		}
		if err := tx.SetJSON(core.MembershipKey(ghost, roomID), core.MembershipRecord{Membership: spec.Join, EventID: "$gone"}); err != nil {
			return err
		}
		return tx.SetJSON(joinPendingKey(roomID, ghost), []string{ghost})
	})
	if err != nil {
		t.Fatal(err)
	}

	late := userID(a, "late")
	if _, err := a.Join(ctx, late, "D", roomID); err != nil {
		t.Fatal(err)
	}
	b.SetRemote(joinOnly{RemoteJoiner: directJoiner{joining: b, resident: a}})
	if _, err := b.Join(ctx, bob, "DEVbob", roomID); err != nil {
		t.Fatalf("join retried after the crash: %v", err)
	}
	for _, u := range []string{bob, alice, userID(a, "m0000"), userID(a, fmt.Sprintf("m%04d", members-1)), late} {
		mi, err := b.Membership(ctx, roomID, u)
		if err != nil || mi.Membership != spec.Join {
			t.Fatalf("%s on B: %+v %v", u, mi, err)
		}
	}
	sameStateSize(ctx, t, a, b, roomID)
	servers, err := b.JoinedServers(ctx, roomID)
	if err != nil || !slices.Equal(servers, sortedStrings(a.ServerName(), b.ServerName())) {
		t.Fatalf("B's joined servers: %v %v", servers, err)
	}
	if mi, err := b.Membership(ctx, roomID, ghost); err != nil || mi.Membership == spec.Join {
		t.Fatalf("a member left by an earlier attempt: %+v %v", mi, err)
	}
	if n := countKeys(t, b, tJoinPending); n != 0 {
		t.Fatalf("%d pending-join lists left after the join", n)
	}
	if _, err := b.FederationEvent(ctx, a.ServerName(), createID.PDU.EventID()); err != nil {
		t.Fatalf("/event of the joined room's create event: %v", err)
	}
}

func sortedStrings(s ...string) []string {
	slices.Sort(s)
	return s
}
