package core

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"

	"github.com/edgenode/edgenode/kv"
	"github.com/matrix-org/gomatrixserverlib"
	"github.com/matrix-org/gomatrixserverlib/spec"
)

// stateContent decodes one current state event's content.
func stateContent(t *testing.T, n *Node, roomID, evType, stateKey string) map[string]any {
	t.Helper()
	ev, err := n.CurrentStateEvent(context.Background(), roomID, evType, stateKey)
	if err != nil {
		t.Fatalf("state %s/%s: %v", evType, stateKey, err)
	}
	var c map[string]any
	if err := json.Unmarshal(ev.PDU.Content(), &c); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCreateRoomPresets(t *testing.T) {
	ctx := context.Background()
	n := newTestNodeWith(t, func(c *Config) { c.NoSyncWrites = true })
	alice, bob := session(n, "alice"), session(n, "bob")
	tests := []struct {
		preset, visibility string
		joinRule, guest    string
		inviteeLevel       float64 // bob's power level
		invitePL           float64 // the level needed to invite
	}{
		{PresetPublicChat, "", "public", "forbidden", 0, 50},
		{PresetPrivateChat, "", "invite", "can_join", 0, 0},
		{PresetTrustedPrivateChat, "", "invite", "can_join", 100, 0},
		{"", "public", "public", "forbidden", 0, 50}, // the preset follows visibility
		{"", "", "invite", "can_join", 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.preset+"/"+tc.visibility, func(t *testing.T) {
			roomID, err := n.CreateRoom(ctx, CreateRoomRequest{
				Creator: alice.UserID, Preset: tc.preset, Visibility: tc.visibility, Invite: []string{bob.UserID},
			})
			if err != nil {
				t.Fatal(err)
			}
			if got := stateContent(t, n, roomID, spec.MRoomJoinRules, "")["join_rule"]; got != tc.joinRule {
				t.Errorf("join_rule %v, want %s", got, tc.joinRule)
			}
			if got := stateContent(t, n, roomID, "m.room.guest_access", "")["guest_access"]; got != tc.guest {
				t.Errorf("guest_access %v, want %s", got, tc.guest)
			}
			if got := stateContent(t, n, roomID, spec.MRoomHistoryVisibility, "")["history_visibility"]; got != "shared" {
				t.Errorf("history_visibility %v, want shared", got)
			}
			pl := stateContent(t, n, roomID, spec.MRoomPowerLevels, "")
			users := pl["users"].(map[string]any)
			if users[alice.UserID] != 100.0 {
				t.Errorf("creator's level %v", users[alice.UserID])
			}
			if got, _ := users[bob.UserID].(float64); got != tc.inviteeLevel {
				t.Errorf("invitee's level %v, want %v", got, tc.inviteeLevel)
			}
			if pl["invite"] != tc.invitePL {
				t.Errorf("invite level %v, want %v", pl["invite"], tc.invitePL)
			}
			expectMembership(t, n, roomID, alice.UserID, spec.Join, mustStateID(t, n, roomID, spec.MRoomMember, alice.UserID))
			expectMembership(t, n, roomID, bob.UserID, spec.Invite, mustStateID(t, n, roomID, spec.MRoomMember, bob.UserID))
			create := stateContent(t, n, roomID, spec.MRoomCreate, "")
			if create["room_version"] != string(DefaultRoomVersion) {
				t.Errorf("create content %v", create)
			}
		})
	}
}

func mustStateID(t *testing.T, n *Node, roomID, evType, stateKey string) string {
	t.Helper()
	ev, err := n.CurrentStateEvent(context.Background(), roomID, evType, stateKey)
	if err != nil {
		t.Fatalf("state %s/%s: %v", evType, stateKey, err)
	}
	return ev.PDU.EventID()
}

func TestCreateRoomContent(t *testing.T) {
	ctx := context.Background()
	n := newTestNodeWith(t, func(c *Config) { c.NoSyncWrites = true })
	alice := session(n, "alice")
	name, topic := "The room", "What it is about"
	roomID, err := n.CreateRoom(ctx, CreateRoomRequest{
		Creator: alice.UserID, Preset: PresetPrivateChat, Name: &name, Topic: &topic,
		InitialState: []InitialStateEvent{
			{Type: "org.example.settings", StateKey: "k", Content: json.RawMessage(`{"x":1}`)},
			{Type: spec.MRoomHistoryVisibility, Content: json.RawMessage(`{"history_visibility":"joined"}`)},
		},
		PowerLevelContentOverride: json.RawMessage(`{"events_default":10}`),
		CreationContent:           json.RawMessage(`{"m.federate":false}`),
	})
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		evType, stateKey, field string
		want                    any
	}{
		{"org.example.settings", "k", "x", 1.0},
		{spec.MRoomHistoryVisibility, "", "history_visibility", "joined"}, // initial_state wins over the preset
		{spec.MRoomName, "", "name", name},
		{spec.MRoomTopic, "", "topic", topic},
		{spec.MRoomPowerLevels, "", "events_default", 10.0},
		{spec.MRoomPowerLevels, "", "state_default", 50.0}, // the override merges
		{spec.MRoomCreate, "", "m.federate", false},
		{spec.MRoomCreate, "", "room_version", string(DefaultRoomVersion)},
	}
	for _, c := range checks {
		if got := stateContent(t, n, roomID, c.evType, c.stateKey)[c.field]; got != c.want {
			t.Errorf("%s/%s %s = %v, want %v", c.evType, c.stateKey, c.field, got, c.want)
		}
	}
	// The room's first events are one atomic batch: one position each, in
	// the spec's order, create first.
	page, err := n.RoomEvents(ctx, alice.UserID, roomID, Range{Limit: 50})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Events) == 0 || page.Events[0].PDU.Type() != spec.MRoomCreate || page.Events[1].PDU.Type() != spec.MRoomMember {
		t.Fatalf("first events out of order")
	}
	for i, ev := range page.Events[1:] {
		if ev.Pos != page.Events[i].Pos+1 {
			t.Errorf("positions not consecutive: %d then %d", page.Events[i].Pos, ev.Pos)
		}
	}
}

func TestCreateRoomAlias(t *testing.T) {
	ctx := context.Background()
	n := newTestNodeWith(t, func(c *Config) { c.NoSyncWrites = true })
	alice, bob := session(n, "alice"), session(n, "bob")
	roomID, err := n.CreateRoom(ctx, CreateRoomRequest{Creator: alice.UserID, Preset: PresetPublicChat, RoomAliasName: "lobby"})
	if err != nil {
		t.Fatal(err)
	}
	alias := n.AliasName("lobby")
	if got, err := n.ResolveAlias(ctx, alias); err != nil || got != roomID {
		t.Fatalf("ResolveAlias: %q, %v", got, err)
	}
	if got := stateContent(t, n, roomID, "m.room.canonical_alias", "")["alias"]; got != alias {
		t.Errorf("canonical alias %v", got)
	}
	if aliases, err := n.RoomAliases(ctx, roomID); err != nil || len(aliases) != 1 || aliases[0] != alias {
		t.Errorf("RoomAliases: %v, %v", aliases, err)
	}
	if joined, err := n.Join(ctx, bob.UserID, bob.DeviceID, alias); err != nil || joined != roomID {
		t.Errorf("join by alias: %q, %v", joined, err)
	}

	// A taken alias fails the whole creation: no room, no events.
	rooms, events := countKeys(t, n, tRoom), countKeys(t, n, tEvent)
	if _, err := n.CreateRoom(ctx, CreateRoomRequest{Creator: bob.UserID, RoomAliasName: "lobby"}); !errors.Is(err, ErrRoomInUse) {
		t.Fatalf("taken alias: %v, want ErrRoomInUse", err)
	}
	// Racing creations of one alias: one wins; the others leave nothing
	// behind, whether the early check or the commit refuses them.
	const racers = 6
	errs := make([]error, racers)
	var wg sync.WaitGroup
	for i := range racers {
		wg.Go(func() {
			_, errs[i] = n.CreateRoom(ctx, CreateRoomRequest{Creator: bob.UserID, RoomAliasName: "contested"})
		})
	}
	wg.Wait()
	wins := 0
	for _, err := range errs {
		switch {
		case err == nil:
			wins++
		case !errors.Is(err, ErrRoomInUse):
			t.Errorf("racing creation: %v", err)
		}
	}
	if wins != 1 {
		t.Fatalf("%d creations won the alias, want 1", wins)
	}
	if got := countKeys(t, n, tRoom); got != rooms+1 {
		t.Errorf("rooms: %d -> %d, want one more", rooms, got)
	}
	winner, err := n.ResolveAlias(ctx, n.AliasName("contested"))
	if err != nil {
		t.Fatal(err)
	}
	if got, won := countKeys(t, n, tEvent), countPrefix(t, n, RoomStreamPrefix(winner)); got != events+won {
		t.Errorf("event records: %d -> %d, the winning room has %d; the losers left events behind", events, got, won)
	}
}

func TestCreateRoomInvalid(t *testing.T) {
	ctx := context.Background()
	n := newTestNodeWith(t, func(c *Config) { c.NoSyncWrites = true })
	alice := session(n, "alice")
	tests := []struct {
		name string
		req  CreateRoomRequest
		want error
	}{
		{"room version 1", CreateRoomRequest{RoomVersion: "1"}, ErrUnsupportedRoomVersion},
		{"room version 9", CreateRoomRequest{RoomVersion: "9"}, ErrUnsupportedRoomVersion},
		{"room version 12", CreateRoomRequest{RoomVersion: "12"}, ErrUnsupportedRoomVersion},
		{"unknown room version", CreateRoomRequest{RoomVersion: "bogus"}, ErrUnsupportedRoomVersion},
		{"unknown preset", CreateRoomRequest{Preset: "party"}, ErrBadInput},
		{"invitee not a user ID", CreateRoomRequest{Invite: []string{"bob"}}, ErrInvalidParam},
		{"member in initial_state", CreateRoomRequest{InitialState: []InitialStateEvent{
			{Type: spec.MRoomMember, StateKey: alice.UserID, Content: json.RawMessage(`{"membership":"join"}`)}}}, ErrBadInput},
		{"non-object initial_state content", CreateRoomRequest{InitialState: []InitialStateEvent{
			{Type: "x.y", Content: json.RawMessage(`[1]`)}}}, ErrBadInput},
		{"alias name with a colon", CreateRoomRequest{RoomAliasName: "a:b"}, ErrInvalidParam},
		{"bad power level override", CreateRoomRequest{PowerLevelContentOverride: json.RawMessage(`[]`)}, ErrBadInput},
	}
	rooms, events := countKeys(t, n, tRoom), countKeys(t, n, tEvent)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.req.Creator = alice.UserID
			if id, err := n.CreateRoom(ctx, tc.req); !errors.Is(err, tc.want) {
				t.Fatalf("got %q, %v; want %v", id, err, tc.want)
			}
		})
	}
	if countKeys(t, n, tRoom) != rooms || countKeys(t, n, tEvent) != events {
		t.Error("a refused creation stored something")
	}
	for _, v := range SupportedRoomVersions() {
		roomID, err := n.CreateRoom(ctx, CreateRoomRequest{Creator: alice.UserID, RoomVersion: string(v)})
		if err != nil {
			t.Fatalf("room version %s: %v", v, err)
		}
		if got := stateContent(t, n, roomID, spec.MRoomCreate, "")["room_version"]; got != string(v) {
			t.Errorf("room version %s: create says %v", v, got)
		}
	}
}

// TestUnsupportedRoomVersion: the node refuses version 12 (unsafe state
// resolution at the pinned library) and older versions everywhere: as its
// default, and for events arriving from elsewhere.
func TestUnsupportedRoomVersion(t *testing.T) {
	for _, v := range []gomatrixserverlib.RoomVersion{"9", "12", "bogus"} {
		_, err := Open(context.Background(), Config{DataDir: t.TempDir(), DefaultRoomVersion: v})
		if !errors.Is(err, ErrUnsupportedRoomVersion) {
			t.Errorf("Open with default room version %s: %v", v, err)
		}
	}
	n := newTestNodeWith(t, func(c *Config) { c.NoSyncWrites = true })
	d := newDAGRoom(t, n, gomatrixserverlib.RoomVersionV9)
	alice := d.user("alice")
	d.build("C", dagEvent{Sender: alice, Type: spec.MRoomCreate, StateKey: stateKey(""), Content: d.createContent(alice)})
	if err := d.input(n, "C")[0]; !errors.Is(err, ErrUnsupportedRoomVersion) {
		t.Fatalf("v9 create event: %v", err)
	}
	if ok, err := n.RoomExists(context.Background(), d.roomID); ok || err != nil {
		t.Fatalf("v9 room exists: %v, %v", ok, err)
	}
}

// TestRoomBatchAtomic: when any write of a batch fails, none of it is
// stored, as CreateRoom relies on when its alias turns out to be taken at
// commit.
func TestRoomBatchAtomic(t *testing.T) {
	n := newTestNodeWith(t, func(c *Config) { c.NoSyncWrites = true })
	alice := session(n, "alice").UserID
	roomID := "!atomic:" + n.ServerName()
	events, pos := countKeys(t, n, tEvent), n.StreamPosition()
	boom := errors.New("boom")
	_, err := n.WithRoom(context.Background(), roomID, func(b *Batch) error {
		for _, e := range []struct {
			t, k, c string
		}{
			{spec.MRoomCreate, "", `{"creator":"` + alice + `"}`},
			{spec.MRoomMember, alice, `{"membership":"join"}`},
		} {
			k := e.k
			ev, err := b.Build(gomatrixserverlib.ProtoEvent{SenderID: alice, Type: e.t, StateKey: &k, Content: []byte(e.c)}, DefaultRoomVersion)
			if err != nil {
				return err
			}
			if err := b.Input(ev, InputOpts{}); err != nil {
				return err
			}
		}
		b.Extra = append(b.Extra, func(*kv.Txn) error { return boom })
		return nil
	})
	if !errors.Is(err, boom) {
		t.Fatalf("withRoom: %v, want the extra write's error", err)
	}
	if ok, _ := n.RoomExists(context.Background(), roomID); ok || countKeys(t, n, tEvent) != events || n.StreamPosition() != pos {
		t.Fatalf("a failed batch left a trace: room %v, events %d -> %d, position %d -> %d",
			ok, events, countKeys(t, n, tEvent), pos, n.StreamPosition())
	}
}
