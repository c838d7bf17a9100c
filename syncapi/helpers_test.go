package syncapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"testing"

	"github.com/edgenode/edgenode/internal/testnode"
	"github.com/edgenode/edgenode/node"
	"github.com/edgenode/edgenode/node/core"
)

// env is a running node with its HTTP API, for the tests of this package.
type env struct {
	t  testing.TB
	tn *testnode.Node
	n  *node.Node
}

func newEnv(t testing.TB) *env {
	t.Helper()
	tn := testnode.Start(t, testnode.Options{})
	return &env{t: t, tn: tn, n: tn.App.Node}
}

// user registers a user on the node directly (clientapi is not needed).
func (e *env) user(localpart string) node.Session {
	e.t.Helper()
	s, err := e.n.Register(context.Background(), node.RegisterRequest{Localpart: localpart})
	if err != nil {
		e.t.Fatalf("register %s: %v", localpart, err)
	}
	return s
}

// room creates a room; initial is (type, content) pairs of initial state.
func (e *env) room(creator node.Session, preset string, initial ...core.InitialStateEvent) string {
	e.t.Helper()
	id, err := e.n.CreateRoom(context.Background(), core.CreateRoomRequest{
		Creator: creator.UserID, DeviceID: creator.DeviceID, Preset: preset, InitialState: initial,
	})
	if err != nil {
		e.t.Fatalf("create room: %v", err)
	}
	return id
}

// historyVisibility is an initial state entry setting m.room.history_visibility.
func historyVisibility(hv string) core.InitialStateEvent {
	return core.InitialStateEvent{
		Type: "m.room.history_visibility", Content: json.RawMessage(`{"history_visibility":"` + hv + `"}`),
	}
}

// send sends an event with the given content and returns its ID.
func (e *env) send(s node.Session, roomID, evType string, content any) string {
	e.t.Helper()
	raw, err := json.Marshal(content)
	if err != nil {
		e.t.Fatal(err)
	}
	id, err := e.n.SendEvent(context.Background(), core.SendRequest{
		Sender: s.UserID, DeviceID: s.DeviceID, RoomID: roomID, Type: evType, Content: raw,
	})
	if err != nil {
		e.t.Fatalf("send %s: %v", evType, err)
	}
	return id
}

// say sends an m.text message.
func (e *env) say(s node.Session, roomID, body string) string {
	e.t.Helper()
	return e.send(s, roomID, "m.room.message", map[string]string{"msgtype": "m.text", "body": body})
}

func (e *env) membership(sender node.Session, roomID, target, membership string) {
	e.t.Helper()
	_, err := e.n.ChangeMembership(context.Background(), core.MembershipChange{
		Sender: sender.UserID, DeviceID: sender.DeviceID, RoomID: roomID, Target: target, Membership: membership,
	})
	if err != nil {
		e.t.Fatalf("%s %s: %v", membership, target, err)
	}
}

func (e *env) join(s node.Session, roomID string) {
	e.t.Helper()
	e.membership(s, roomID, s.UserID, "join")
}

// event is the part of a client event the tests look at.
type event struct {
	EventID  string          `json:"event_id"`
	RoomID   string          `json:"room_id"`
	Type     string          `json:"type"`
	Sender   string          `json:"sender"`
	StateKey *string         `json:"state_key"`
	Content  json.RawMessage `json:"content"`
	Unsigned map[string]any  `json:"unsigned"`
}

func (ev event) body() string {
	var c struct {
		Body string `json:"body"`
	}
	_ = json.Unmarshal(ev.Content, &c)
	return c.Body
}

// messagesBody is a decoded /messages answer; End is nil when omitted.
type messagesBody struct {
	Chunk []event `json:"chunk"`
	Start string  `json:"start"`
	End   *string `json:"end"`
	State []event `json:"state"`
	Raw   []byte  `json:"-"`
}

// get calls GET path?q and returns the response.
func (e *env) get(token, path string, q url.Values) testnode.Response {
	e.t.Helper()
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	return e.tn.Do("GET", path, token, nil)
}

// messages calls /messages and fails the test unless it answers 200.
func (e *env) messages(s node.Session, roomID string, q url.Values) messagesBody {
	e.t.Helper()
	res := e.get(s.AccessToken, "/_matrix/client/v3/rooms/"+url.PathEscape(roomID)+"/messages", q)
	if res.Status != http.StatusOK {
		e.t.Fatalf("messages %v: %d %s", q, res.Status, res.Raw)
	}
	var b messagesBody
	if err := json.Unmarshal(res.Raw, &b); err != nil {
		e.t.Fatalf("decode messages: %v: %s", err, res.Raw)
	}
	if b.Chunk == nil {
		e.t.Fatalf("messages: chunk missing or null: %s", res.Raw)
	}
	b.Raw = res.Raw
	return b
}

// walk pages through /messages from q until there is no end, and returns
// every event in order. It fails the test if a page repeats.
func (e *env) walk(s node.Session, roomID string, q url.Values) []event {
	e.t.Helper()
	var all []event
	seen := map[string]bool{}
	for page := 0; ; page++ {
		if page > 10000 {
			e.t.Fatal("pagination does not end")
		}
		b := e.messages(s, roomID, q)
		for _, ev := range b.Chunk {
			if seen[ev.EventID] {
				e.t.Fatalf("event %s returned twice", ev.EventID)
			}
			seen[ev.EventID] = true
		}
		all = append(all, b.Chunk...)
		if b.End == nil {
			return all
		}
		q = cloneValues(q)
		q.Set("from", *b.End)
	}
}

func cloneValues(q url.Values) url.Values {
	out := url.Values{}
	for k, v := range q {
		out[k] = append([]string(nil), v...)
	}
	return out
}

func ids(evs []event) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = ev.EventID
	}
	return out
}

func bodies(evs []event) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = ev.body()
	}
	return out
}

func reversed[T any](s []T) []T {
	out := make([]T, len(s))
	for i, v := range s {
		out[len(s)-1-i] = v
	}
	return out
}

func vals(kv ...string) url.Values {
	q := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		q.Set(kv[i], kv[i+1])
	}
	return q
}
