package core

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/edgenode/edgenode/internal/identity"
	"github.com/edgenode/edgenode/kv"
	"github.com/matrix-org/gomatrixserverlib"
	"github.com/matrix-org/gomatrixserverlib/spec"
)

// The tests here run the room core as node.New wires it, without the
// concerns around it: the core's own indexers (the user bump lists and the
// notifier) are registered, and the federation side is one that knows only
// this server (localFederation). Room input trusts the caller's identity,
// which the client API checks, so the users need no accounts. Tests that need
// accounts, EDUs, E2EE or federation are node's.

// testConfig is the configuration node's tests use too: open registration,
// the phone profile, logs discarded, synchronous writes on (the default).
func testConfig(dir string) Config {
	return Config{
		DataDir: dir, OpenRegistration: true, StorageProfile: "phone",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
}

// newTestNode opens a room core on a fresh directory and closes it when the
// test ends.
func newTestNode(t testing.TB) *Node {
	t.Helper()
	return newTestNodeWith(t, nil)
}

// newTestNodeWith is newTestNode with the configuration changed by mod first.
func newTestNodeWith(t testing.TB, mod func(*Config)) *Node {
	t.Helper()
	cfg := testConfig(t.TempDir())
	if mod != nil {
		mod(&cfg)
	}
	n := openNode(t, cfg)
	t.Cleanup(func() { n.Close() })
	return n
}

// openNode opens a room core with cfg, with its own indexers in node.New's
// order and a federation side that knows only this server; the caller
// closes it.
func openNode(t testing.TB, cfg Config) *Node {
	t.Helper()
	n, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	n.SetIndexers(UserBumpIndexer{Node: n}, NotifierIndexer{Node: n})
	n.SetFederation(localFederation{n})
	return n
}

// localFederation is the federation side of a server with no peers, as
// node/inbound behaves with no remote set: local aliases resolve from the
// database, backfill finds nothing, and whatever needs another server
// fails.
type localFederation struct{ n *Node }

func (f localFederation) JoinRemote(context.Context, MembershipChange, []string) (string, error) {
	return "", fmt.Errorf("join: no federation in this test: %w", ErrRemoteUnavailable)
}

func (f localFederation) RejectOutOfBand(context.Context, MembershipChange) (string, error) {
	return "", fmt.Errorf("reject invite: no federation in this test: %w", ErrRemoteUnavailable)
}

func (f localFederation) InviteRemote(context.Context, SendRequest) (string, error) {
	return "", fmt.Errorf("invite: no federation in this test: %w", ErrRemoteUnavailable)
}

func (f localFederation) LookupAlias(ctx context.Context, alias string) (RoomAlias, error) {
	roomID, err := f.n.ResolveAlias(ctx, alias)
	if err != nil {
		return RoomAlias{}, err
	}
	return RoomAlias{RoomID: roomID, Servers: []string{f.n.ServerName()}}, nil
}

func (f localFederation) BackfillRoom(context.Context, string) (int, error) { return 0, nil }

// Session is a local user and device as node's tests name them (node.Session
// without the access token).
type Session struct {
	UserID, DeviceID string
}

// session names a local user and device without an account: room input
// trusts the caller's identity, which the client API checks, so tests about
// rooms need no accounts.
func session(n *Node, localpart string) Session {
	return Session{UserID: "@" + localpart + ":" + n.ServerName(), DeviceID: "DEV" + localpart}
}

// send sends an m.room.message with the given body.
func send(t testing.TB, n *Node, s Session, roomID, body string) string {
	t.Helper()
	c, _ := json.Marshal(map[string]string{"msgtype": "m.text", "body": body})
	id, err := n.SendEvent(context.Background(), SendRequest{
		Sender: s.UserID, DeviceID: s.DeviceID, RoomID: roomID, Type: "m.room.message", Content: c,
	})
	if err != nil {
		t.Fatalf("send %q: %v", body, err)
	}
	return id
}

// sendState sends a state event as s.
func sendState(t testing.TB, n *Node, s Session, roomID, evType, stateKey string, content any) string {
	t.Helper()
	c, _ := json.Marshal(content)
	id, err := n.SendEvent(context.Background(), SendRequest{
		Sender: s.UserID, DeviceID: s.DeviceID, RoomID: roomID, Type: evType, StateKey: &stateKey, Content: c,
	})
	if err != nil {
		t.Fatalf("send %s/%s: %v", evType, stateKey, err)
	}
	return id
}

// membership changes target's membership in roomID, sent by s.
func membership(t testing.TB, n *Node, s Session, roomID, target, m string) string {
	t.Helper()
	id, err := n.ChangeMembership(context.Background(), MembershipChange{
		Sender: s.UserID, DeviceID: s.DeviceID, RoomID: roomID, Target: target, Membership: m,
	})
	if err != nil {
		t.Fatalf("%s sets %s to %s: %v", s.UserID, target, m, err)
	}
	return id
}

// countKeys counts the keys of one table.
func countKeys(t testing.TB, n *Node, table string) int {
	t.Helper()
	return countPrefix(t, n, kv.Key(table))
}

// countPrefix counts the keys under a prefix.
func countPrefix(t testing.TB, n *Node, prefix []byte) int {
	t.Helper()
	count, err := n.DB.Count(prefix)
	if err != nil {
		t.Fatalf("count keys under %q: %v", prefix, err)
	}
	return count
}

// roomHead reads a room's stored record.
func roomHead(t testing.TB, n *Node, roomID string) *RoomRecord {
	t.Helper()
	var r *RoomRecord
	err := n.DB.View(func(tx *kv.Txn) error {
		var err error
		r, err = LoadRoom(tx, roomID)
		return err
	})
	if err != nil {
		t.Fatalf("load room: %v", err)
	}
	return r
}

// storedRecord reads an event's stored record, whatever its fate.
func storedRecord(t testing.TB, n *Node, eventID string) *EventRecord {
	t.Helper()
	var rec *EventRecord
	err := n.DB.View(func(tx *kv.Txn) error {
		var err error
		if rec, err = LoadEventRecord(tx, eventID); err != nil {
			return err
		}
		_, err = rec.ReadJSON(tx, eventID)
		return err
	})
	if err != nil {
		t.Fatalf("load event %s: %v", eventID, err)
	}
	return rec
}

// readSnapshot loads a stored state snapshot.
func readSnapshot(t testing.TB, n *Node, id string) *State {
	t.Helper()
	var s *State
	err := n.DB.View(func(tx *kv.Txn) error {
		var err error
		s, err = n.States.Read(tx, id)
		return err
	})
	if err != nil {
		t.Fatalf("read snapshot %q: %v", id, err)
	}
	return s
}

// stateMap turns a State into a plain map.
func stateMap(s *State) map[StateKey]string {
	m := map[StateKey]string{}
	s.Each(func(k StateKey, id string) { m[k] = id })
	return m
}

// dagRoom builds and signs the events of one room by hand, as a remote server
// would send them: explicit prev_events, auth_events and depth, signed with a
// server's key. Events are named by the test; prev and auth events are given
// by name. inputs feed them through the node's real room input
// (WithRoom + Batch.Input), the path federated events take.
type dagRoom struct {
	t       testing.TB
	key     ed25519.PrivateKey
	server  string
	version gomatrixserverlib.RoomVersion
	roomID  string
	// ts is the origin_server_ts of the next event; each build adds a
	// second, so timestamps (a state resolution tie-break) follow build order.
	ts     time.Time
	byName map[string]gomatrixserverlib.PDU
	names  map[string]string // event ID -> name
}

// newDAGRoom starts a room whose events are signed with n's key and server
// name, as if another of n's processes (or a peer sharing its name) made them.
func newDAGRoom(t testing.TB, n *Node, version gomatrixserverlib.RoomVersion) *dagRoom {
	return &dagRoom{
		t: t, key: n.SigningKey(), server: n.ServerName(), version: version,
		roomID: "!dag" + RandomString(10) + ":" + n.ServerName(),
		ts:     time.UnixMilli(1_700_000_000_000),
		byName: map[string]gomatrixserverlib.PDU{}, names: map[string]string{},
	}
}

// user is a user ID on the room's server.
func (d *dagRoom) user(localpart string) string { return "@" + localpart + ":" + d.server }

// dagEvent describes one hand-built event.
type dagEvent struct {
	Sender   string
	Type     string
	StateKey *string // nil for a message event
	Content  any
	Redacts  string   // name of the redacted event
	Prev     []string // names of prev_events
	Auth     []string // names of auth_events
}

// stateKey returns a pointer to k, for dagEvent.StateKey.
func stateKey(k string) *string { return &k }

// build creates, signs and names an event. Unknown names in Prev or Auth are
// used as raw event IDs, so a test can point at events that do not exist.
func (d *dagRoom) build(name string, e dagEvent) gomatrixserverlib.PDU {
	d.t.Helper()
	if _, dup := d.byName[name]; dup {
		d.t.Fatalf("dag: event name %q used twice", name)
	}
	content, err := json.Marshal(e.Content)
	if err != nil {
		d.t.Fatalf("dag %s: content: %v", name, err)
	}
	depth := int64(0)
	prevs := make([]string, 0, len(e.Prev))
	for _, p := range e.Prev {
		prevs = append(prevs, d.id(p))
		if ev, ok := d.byName[p]; ok {
			depth = max(depth, ev.Depth())
		}
	}
	auths := make([]string, 0, len(e.Auth))
	for _, a := range e.Auth {
		auths = append(auths, d.id(a))
	}
	verImpl, err := gomatrixserverlib.GetRoomVersion(d.version)
	if err != nil {
		d.t.Fatalf("dag %s: %v", name, err)
	}
	proto := gomatrixserverlib.ProtoEvent{
		SenderID: e.Sender, RoomID: d.roomID, Type: e.Type, StateKey: e.StateKey,
		PrevEvents: prevs, AuthEvents: auths, Depth: depth + 1, Content: content,
	}
	if e.Redacts != "" {
		proto.Redacts = d.id(e.Redacts)
	}
	ev, err := verImpl.NewEventBuilderFromProtoEvent(&proto).Build(d.ts, spec.ServerName(d.server), identity.KeyID, d.key)
	if err != nil {
		d.t.Fatalf("dag %s: build: %v", name, err)
	}
	d.ts = d.ts.Add(time.Second)
	ev.EventID() // cache the ID before the PDU is shared
	d.byName[name] = ev
	d.names[ev.EventID()] = name
	return ev
}

// id is the event ID of a named event (or name itself if unknown).
func (d *dagRoom) id(name string) string {
	if ev, ok := d.byName[name]; ok {
		return ev.EventID()
	}
	return name
}

// ev is a named event.
func (d *dagRoom) ev(name string) gomatrixserverlib.PDU {
	d.t.Helper()
	ev, ok := d.byName[name]
	if !ok {
		d.t.Fatalf("dag: no event %q", name)
	}
	return ev
}

// name is the test's name for an event ID ("?<id>" if unknown).
func (d *dagRoom) name(eventID string) string {
	if n, ok := d.names[eventID]; ok {
		return n
	}
	return "?" + eventID
}

// input feeds the named events to n in one batch (one transaction, as one
// federation transaction would) and returns each event's input error.
func (d *dagRoom) input(n *Node, names ...string) []error {
	d.t.Helper()
	errs := make([]error, len(names))
	_, err := n.WithRoom(context.Background(), d.roomID, func(b *Batch) error {
		for i, name := range names {
			errs[i] = b.Input(d.ev(name), InputOpts{})
		}
		return nil
	})
	if err != nil {
		d.t.Fatalf("dag: input %v: %v", names, err)
	}
	return errs
}

// accept inputs the named events, one batch each, and fails the test unless
// every one is accepted.
func (d *dagRoom) accept(n *Node, names ...string) {
	d.t.Helper()
	for _, name := range names {
		if err := d.input(n, name)[0]; err != nil {
			d.t.Fatalf("dag: %s not accepted: %v", name, err)
		}
	}
}

// softFail inputs one named event and fails the test unless it is soft-failed.
func (d *dagRoom) softFail(n *Node, name string) {
	d.t.Helper()
	err := d.input(n, name)[0]
	var ie *InputError
	if !errors.As(err, &ie) || !ie.SoftFailed {
		d.t.Fatalf("dag: %s: got %v, want soft-failed", name, err)
	}
}

// namedState renders a state as (type|state_key) -> event name, for
// comparison with a state written out by hand.
func (d *dagRoom) namedState(s *State) map[string]string {
	out := map[string]string{}
	s.Each(func(k StateKey, id string) { out[k.EventType+"|"+k.StateKey] = d.name(id) })
	return out
}

// diffNamed describes how got differs from want ("" when equal).
func diffNamed(got, want map[string]string) string {
	var keys []string
	for k := range got {
		keys = append(keys, k)
	}
	for k := range want {
		if _, ok := got[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	out := ""
	for _, k := range keys {
		if got[k] != want[k] {
			out += fmt.Sprintf("\n  %s: got %q, want %q", k, got[k], want[k])
		}
	}
	return out
}

// powerLevels is power-levels content with the given user levels and the
// spec's private-chat defaults otherwise.
func powerLevels(users map[string]int) map[string]any {
	return map[string]any{
		"users": users, "users_default": 0, "events_default": 0, "state_default": 50,
		"ban": 50, "kick": 50, "redact": 50, "invite": 0,
		"events": map[string]any{"m.room.power_levels": 100, "m.room.history_visibility": 100},
	}
}

// createContent is m.room.create content for the room's version.
func (d *dagRoom) createContent(creator string) map[string]any {
	c := map[string]any{"room_version": string(d.version)}
	if d.version == gomatrixserverlib.RoomVersionV10 {
		c["creator"] = creator
	}
	return c
}

// sendBatches sends local events size at a time, each group in one room
// batch (one transaction), as createRoom does with a room's first events.
func sendBatches(t testing.TB, n *Node, roomID string, size int, reqs []SendRequest) []string {
	t.Helper()
	var ids []string
	for len(reqs) > 0 {
		k := min(size, len(reqs))
		_, err := n.WithRoom(context.Background(), roomID, func(b *Batch) error {
			for _, req := range reqs[:k] {
				id, err := b.BuildAndInput(req)
				if err != nil {
					return err
				}
				ids = append(ids, id)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("send batch: %v", err)
		}
		reqs = reqs[k:]
	}
	return ids
}
