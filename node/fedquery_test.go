package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/edgenode/edgenode/node/core"
	"github.com/edgenode/edgenode/node/inbound"
)

// directQuerier is a RemoteQuerier that answers from another node
// in-process, as that node's federation handler would, with a hook to
// tamper with key answers (a hostile server). Servers in down fail; slow
// blocks until the request's context ends.
type directQuerier struct {
	remote *Node
	slow   string
	tamper func(*inbound.RemoteKeys, map[string]map[string]map[string]json.RawMessage)
}

func (d directQuerier) reach(ctx context.Context, server string) error {
	if server == d.slow {
		<-ctx.Done()
		return fmt.Errorf("%w: %w", core.ErrRemoteUnavailable, ctx.Err())
	}
	if server != d.remote.ServerName() {
		return fmt.Errorf("%w: no route to %s", core.ErrRemoteUnavailable, server)
	}
	return nil
}

func (d directQuerier) QueryDirectory(ctx context.Context, server, alias string) (core.RoomAlias, error) {
	if err := d.reach(ctx, server); err != nil {
		return core.RoomAlias{}, err
	}
	return d.remote.LookupAlias(ctx, alias)
}

func (d directQuerier) QueryProfile(ctx context.Context, server, userID, field string) (core.Profile, error) {
	if err := d.reach(ctx, server); err != nil {
		return core.Profile{}, err
	}
	return d.remote.Profile(ctx, userID)
}

func (d directQuerier) QueryKeys(ctx context.Context, server string, users map[string][]string) (inbound.RemoteKeys, error) {
	if err := d.reach(ctx, server); err != nil {
		return inbound.RemoteKeys{}, err
	}
	dk, mk, sk, _, err := d.remote.QueryKeys(ctx, "", users)
	rk := inbound.RemoteKeys{DeviceKeys: dk, MasterKeys: mk, SelfSigningKeys: sk}
	if d.tamper != nil {
		d.tamper(&rk, nil)
	}
	return rk, err
}

func (d directQuerier) ClaimKeys(ctx context.Context, server string, claims map[string]map[string]string) (map[string]map[string]map[string]json.RawMessage, error) {
	if err := d.reach(ctx, server); err != nil {
		return nil, err
	}
	out, err := d.remote.ClaimKeys(ctx, claims)
	if d.tamper != nil {
		d.tamper(nil, out)
	}
	return out, err
}

func TestQueryAllKeysChecksRemoteAnswers(t *testing.T) {
	ctx := context.Background()
	a, b := newTestNode(t), newTestNode(t)
	alice, bob := register(t, a, "alice"), register(t, b, "bob")
	dk := json.RawMessage(fmt.Sprintf(`{"user_id":%q,"device_id":%q,"algorithms":["a"],"keys":{"ed25519:%s":"k"}}`, bob.UserID, bob.DeviceID, bob.DeviceID))
	otks := map[string]json.RawMessage{"signed_curve25519:A1": json.RawMessage(`{"key":"1"}`)}
	if _, err := b.UploadKeys(ctx, bob.UserID, bob.DeviceID, dk, otks, nil); err != nil {
		t.Fatal(err)
	}
	mallory := "@mallory:" + a.ServerName()

	// No federation: other servers' users are failures, not silence.
	res, err := a.QueryAllKeys(ctx, alice.UserID, map[string][]string{bob.UserID: nil}, 0)
	if err != nil || !errors.Is(res.Failures[b.ServerName()], core.ErrRemoteUnavailable) {
		t.Fatalf("without federation: %+v, %v", res, err)
	}

	// A hostile B adds keys for a user of A, a device under the wrong ID,
	// a master key naming someone else, and a claimed key of another
	// algorithm.
	setRemoteQuerier(a, directQuerier{remote: b, slow: "slow.example", tamper: func(rk *inbound.RemoteKeys, claimed map[string]map[string]map[string]json.RawMessage) {
		if rk != nil {
			rk.DeviceKeys[mallory] = map[string]json.RawMessage{"EVIL": json.RawMessage(`{"user_id":"` + mallory + `","device_id":"EVIL","keys":{}}`)}
			rk.DeviceKeys[bob.UserID]["OTHER"] = dk
			rk.MasterKeys[bob.UserID] = json.RawMessage(`{"user_id":"` + mallory + `","usage":["master"],"keys":{"ed25519:x":"x"}}`)
		}
		if claimed != nil && claimed[bob.UserID] != nil {
			claimed[bob.UserID][bob.DeviceID] = map[string]json.RawMessage{"other_alg:Z": json.RawMessage(`"z"`)}
		}
	}})
	start := time.Now()
	res, err = a.QueryAllKeys(ctx, alice.UserID, map[string][]string{
		bob.UserID: nil, "@x:down.example": nil, "@y:slow.example": nil,
	}, 300*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 20*time.Second {
		t.Fatalf("query took %v with a 300ms timeout", took)
	}
	if len(res.DeviceKeys) != 1 || len(res.DeviceKeys[bob.UserID]) != 1 || string(res.DeviceKeys[bob.UserID][bob.DeviceID]) == "" {
		t.Fatalf("device keys kept: %v; want bob's one device", res.DeviceKeys)
	}
	if len(res.MasterKeys) != 0 || len(res.UserSigningKeys) != 0 {
		t.Fatalf("cross-signing keys kept: %v %v", res.MasterKeys, res.UserSigningKeys)
	}
	for _, s := range []string{"down.example", "slow.example"} {
		if !errors.Is(res.Failures[s], core.ErrRemoteUnavailable) {
			t.Fatalf("failures %v: want %s", res.Failures, s)
		}
	}
	if _, ok := res.Failures[b.ServerName()]; ok || len(res.Failures) != 2 {
		t.Fatalf("failures %v", res.Failures)
	}

	claimed, failures, err := a.ClaimAllKeys(ctx, map[string]map[string]string{bob.UserID: {bob.DeviceID: "signed_curve25519"}}, 0)
	if err != nil || len(failures) != 0 {
		t.Fatalf("claim: %v, %v", failures, err)
	}
	if len(claimed) != 0 {
		t.Fatalf("claim kept a key of another algorithm: %v", claimed)
	}
}

func TestLookupAliasAndProfileRemote(t *testing.T) {
	ctx := context.Background()
	a, b := newTestNode(t), newTestNode(t)
	alice, bob := register(t, a, "alice"), register(t, b, "bob")
	roomID, err := a.CreateRoom(ctx, core.CreateRoomRequest{Creator: alice.UserID, Preset: core.PresetPublicChat, RoomAliasName: "hall"})
	if err != nil {
		t.Fatal(err)
	}
	alias := "#hall:" + a.ServerName()

	if _, err := b.LookupAlias(ctx, alias); !errors.Is(err, core.ErrNotFound) {
		t.Fatalf("remote alias without federation: %v", err)
	}
	if _, err := b.LookupAlias(ctx, "hall"); !errors.Is(err, core.ErrInvalidParam) {
		t.Fatalf("malformed alias: %v", err)
	}
	setRemoteQuerier(b, directQuerier{remote: a})
	ra, err := b.LookupAlias(ctx, alias)
	if err != nil || ra.RoomID != roomID || len(ra.Servers) != 1 || ra.Servers[0] != a.ServerName() {
		t.Fatalf("LookupAlias(%s) = %+v, %v", alias, ra, err)
	}
	if _, err := b.LookupAlias(ctx, "#gone:"+a.ServerName()); !errors.Is(err, core.ErrNotFound) {
		t.Fatalf("unknown remote alias: %v", err)
	}
	if _, err := b.LookupAlias(ctx, "#x:down.example"); !errors.Is(err, core.ErrNotFound) || errors.Is(err, core.ErrRemoteUnavailable) {
		t.Fatalf("alias of an unreachable server: %v", err)
	}
	p, err := b.LookupProfile(ctx, alice.UserID, "")
	if err != nil || p.DisplayName != "alice" {
		t.Fatalf("remote profile: %+v, %v", p, err)
	}
	if p, err := b.LookupProfile(ctx, bob.UserID, ""); err != nil || p.DisplayName != "bob" {
		t.Fatalf("local profile: %+v, %v", p, err)
	}
}
