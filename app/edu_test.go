package app

import (
	"context"
	"encoding/json"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/edgenode/edgenode/internal/testnet"
	"github.com/edgenode/edgenode/node"
)

// eduEvent is an event of /sync's ephemeral, presence or to_device lists.
type eduEvent struct {
	Type    string         `json:"type"`
	Sender  string         `json:"sender"`
	Content map[string]any `json:"content"`
}

// eduSync is the part of a /sync response EDUs show in.
type eduSync struct {
	NextBatch string `json:"next_batch"`
	Rooms     struct {
		Join map[string]struct {
			Ephemeral struct {
				Events []eduEvent `json:"events"`
			} `json:"ephemeral"`
		} `json:"join"`
	} `json:"rooms"`
	Presence struct {
		Events []eduEvent `json:"events"`
	} `json:"presence"`
	ToDevice struct {
		Events []eduEvent `json:"events"`
	} `json:"to_device"`
	DeviceLists struct {
		Changed []string `json:"changed"`
	} `json:"device_lists"`
}

// syncer follows one user's /sync on one app.
type syncer struct {
	t     *testing.T
	app   *App
	token string
	since string
}

// once is one /sync from the current position (long-polling up to
// timeout), which it then moves to.
func (s *syncer) once(ctx context.Context, timeout time.Duration) eduSync {
	s.t.Helper()
	q := url.Values{"timeout": {jsonInt(timeout.Milliseconds())}}
	if s.since != "" {
		q.Set("since", s.since)
	}
	var body eduSync
	testnet.Sync(ctx, s.t, s.app.BaseURL(), s.token, q, &body)
	s.since = body.NextBatch
	return body
}

func jsonInt(v int64) string { b, _ := json.Marshal(v); return string(b) }

// until syncs until cond holds for a response (bounded by ctx), calling
// cond on every response on the way.
func (s *syncer) until(ctx context.Context, what string, cond func(eduSync) bool) {
	s.t.Helper()
	for {
		if ctx.Err() != nil {
			s.t.Fatalf("%s: not seen in /sync: %v", what, ctx.Err())
		}
		if cond(s.once(ctx, 5*time.Second)) {
			return
		}
	}
}

// TestEDUsOverFederation: typing, a read receipt, presence, a to-device
// message and a device-key upload by A's alice reach B's bob's /sync, over
// libp2p QUIC.
func TestEDUsOverFederation(t *testing.T) {
	a, b := startPair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	r := sharedRoom(ctx, t, a, b)
	alice, bob, roomID := r.alice, r.bob, r.roomID
	room := "/_matrix/client/v3/rooms/" + url.PathEscape(roomID)
	bs := &syncer{t: t, app: b, token: bob.AccessToken}
	bs.once(ctx, 0)

	// Typing.
	mustCall(t, a, "PUT", room+"/typing/"+url.PathEscape(alice.UserID), alice.AccessToken, map[string]any{"typing": true, "timeout": 30000})
	bs.until(ctx, "alice typing", func(s eduSync) bool {
		for _, ev := range s.Rooms.Join[roomID].Ephemeral.Events {
			if ev.Type == "m.typing" && slices.Contains(anyStrings(ev.Content["user_ids"]), alice.UserID) {
				return true
			}
		}
		return false
	})
	mustCall(t, a, "PUT", room+"/typing/"+url.PathEscape(alice.UserID), alice.AccessToken, map[string]any{"typing": false})
	bs.until(ctx, "alice stops typing", func(s eduSync) bool {
		for _, ev := range s.Rooms.Join[roomID].Ephemeral.Events {
			if ev.Type == "m.typing" && !slices.Contains(anyStrings(ev.Content["user_ids"]), alice.UserID) {
				return true
			}
		}
		return false
	})

	// A read receipt, for a message bob has.
	msg := testnet.SendText(ctx, t, a.node, alice.UserID, alice.DeviceID, roomID, "read me")
	waitForEvent(ctx, t, b, bob.UserID, roomID, msg)
	mustCall(t, a, "POST", room+"/receipt/m.read/"+url.PathEscape(msg), alice.AccessToken, map[string]any{})
	bs.until(ctx, "alice's receipt", func(s eduSync) bool {
		for _, ev := range s.Rooms.Join[roomID].Ephemeral.Events {
			if ev.Type != "m.receipt" {
				continue
			}
			byType, _ := ev.Content[msg].(map[string]any)
			users, _ := byType["m.read"].(map[string]any)
			if _, ok := users[alice.UserID]; ok {
				return true
			}
		}
		return false
	})

	// Presence with a status message.
	mustCall(t, a, "PUT", "/_matrix/client/v3/presence/"+url.PathEscape(alice.UserID)+"/status", alice.AccessToken,
		map[string]any{"presence": "online", "status_msg": "on the train"})
	bs.until(ctx, "alice's presence", func(s eduSync) bool {
		for _, ev := range s.Presence.Events {
			if ev.Sender == alice.UserID && ev.Content["presence"] == "online" && ev.Content["status_msg"] == "on the train" {
				return true
			}
		}
		return false
	})

	// A to-device message, then a marker: the first arrives exactly once
	// by the time the marker does.
	sendToDevice(t, a, alice, "m.test", "t1", bob, map[string]any{"n": 1})
	sendToDevice(t, a, alice, "m.test", "t2", bob, map[string]any{"n": 2})
	seen := map[float64]int{}
	bs.until(ctx, "to-device messages", func(s eduSync) bool {
		for _, ev := range s.ToDevice.Events {
			if ev.Type == "m.test" && ev.Sender == alice.UserID {
				n, _ := ev.Content["n"].(float64)
				seen[n]++
			}
		}
		return seen[2] > 0
	})
	if seen[1] != 1 || seen[2] != 1 {
		t.Fatalf("to-device deliveries %v, want each once", seen)
	}

	// Device keys uploaded on A: bob sees alice in device_lists.changed.
	mustCall(t, a, "POST", "/_matrix/client/v3/keys/upload", alice.AccessToken, map[string]any{"device_keys": map[string]any{
		"user_id": alice.UserID, "device_id": alice.DeviceID,
		"algorithms": []string{"m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"},
		"keys":       map[string]string{"curve25519:" + alice.DeviceID: "curve", "ed25519:" + alice.DeviceID: "ed"},
	}})
	bs.until(ctx, "alice in device_lists.changed", func(s eduSync) bool {
		return slices.Contains(s.DeviceLists.Changed, alice.UserID)
	})
}

// sendToDevice sends one to-device message from s to one device of to.
func sendToDevice(t *testing.T, app *App, s node.Session, evType, txnID string, to node.Session, content map[string]any) {
	t.Helper()
	mustCall(t, app, "PUT", "/_matrix/client/v3/sendToDevice/"+url.PathEscape(evType)+"/"+url.PathEscape(txnID), s.AccessToken,
		map[string]any{"messages": map[string]any{to.UserID: map[string]any{to.DeviceID: content}}})
}

func anyStrings(v any) []string {
	l, _ := v.([]any)
	var out []string
	for _, x := range l {
		if s, ok := x.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// TestToDeviceOverFederationAcrossRestart: a to-device message sent while
// B is down waits in A's durable queue and reaches bob's /sync exactly
// once after B restarts with the same data directory.
func TestToDeviceOverFederationAcrossRestart(t *testing.T) {
	a := startP2P(t, nil)
	dir := t.TempDir()
	b := startP2PAt(t, dir, quicAddrs(a))
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	r := sharedRoom(ctx, t, a, b)
	closeApp(t, b)

	sendToDevice(t, a, r.alice, "m.test", "while-down", r.bob, map[string]any{"n": 1})
	b = startP2PAt(t, dir, quicAddrs(a))
	defer closeApp(t, b)
	bs := &syncer{t: t, app: b, token: r.bob.AccessToken}
	count := 0
	bs.until(ctx, "the message sent while B was down", func(s eduSync) bool {
		for _, ev := range s.ToDevice.Events {
			if ev.Type == "m.test" && ev.Sender == r.alice.UserID {
				count++
			}
		}
		return count > 0
	})
	// A marker sent now comes after any duplicate of the first.
	sendToDevice(t, a, r.alice, "m.marker", "marker", r.bob, map[string]any{})
	bs.until(ctx, "the marker", func(s eduSync) bool {
		done := false
		for _, ev := range s.ToDevice.Events {
			switch ev.Type {
			case "m.test":
				count++
			case "m.marker":
				done = true
			}
		}
		return done
	})
	if count != 1 {
		t.Fatalf("message delivered %d times, want once", count)
	}
}
