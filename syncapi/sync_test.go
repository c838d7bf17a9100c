package syncapi_test

import (
	"context"
	"encoding/json"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"testing"

	"github.com/edgenode/edgenode/node"
	"github.com/edgenode/edgenode/node/core"
)

// syncBody is the part of a /sync response the tests read.
type syncBody struct {
	NextBatch string `json:"next_batch"`
	Rooms     struct {
		Join   map[string]syncRoom    `json:"join"`
		Invite map[string]syncInvited `json:"invite"`
		Leave  map[string]syncRoom    `json:"leave"`
	} `json:"rooms"`
	AccountData struct{ Events []event } `json:"account_data"`
	Presence    struct{ Events []event } `json:"presence"`
	ToDevice    struct{ Events []event } `json:"to_device"`
	DeviceLists struct {
		Changed []string `json:"changed"`
		Left    []string `json:"left"`
	} `json:"device_lists"`
	OTKCounts        map[string]int `json:"device_one_time_keys_count"`
	FallbackKeyTypes []string       `json:"device_unused_fallback_key_types"`
	// Raw is the response as received.
	Raw []byte `json:"-"`
}

// syncRoom is an entry of rooms.join or rooms.leave.
type syncRoom struct {
	Timeline struct {
		Events    []event `json:"events"`
		Limited   bool    `json:"limited"`
		PrevBatch string  `json:"prev_batch"`
	} `json:"timeline"`
	State              eventBatch    `json:"state"`
	StateAfter         eventBatch    `json:"state_after"`
	StateAfterUnstable eventBatch    `json:"org.matrix.msc4222.state_after"`
	Ephemeral          eventBatch    `json:"ephemeral"`
	AccountData        eventBatch    `json:"account_data"`
	Unread             *unreadCounts `json:"unread_notifications"`
	Sticky             eventBatch    `json:"msc4354_sticky"`
	Summary            *struct {
		Heroes  []string `json:"m.heroes"`
		Joined  int      `json:"m.joined_member_count"`
		Invited int      `json:"m.invited_member_count"`
	} `json:"summary"`
}

// eventBatch is a list of events under "events"; Present tells a section
// that was sent (even empty) from one that was left out.
type eventBatch struct {
	Events  []event `json:"events"`
	Present bool    `json:"-"`
}

func (b *eventBatch) UnmarshalJSON(raw []byte) error {
	var v struct {
		Events []event `json:"events"`
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return err
	}
	*b = eventBatch{Events: v.Events, Present: string(raw) != "null"}
	return nil
}

// syncInvited is an entry of rooms.invite; the stripped events are kept raw
// so a test can check exactly which keys they have.
type syncInvited struct {
	InviteState struct {
		Events []map[string]json.RawMessage `json:"events"`
	} `json:"invite_state"`
}

func (e *env) sync(s node.Session, q url.Values) syncBody {
	e.t.Helper()
	res := e.get(s.AccessToken, "/_matrix/client/v3/sync", q)
	if res.Status != 200 {
		e.t.Fatalf("sync %v: %d %s", q, res.Status, res.Raw)
	}
	var b syncBody
	if err := json.Unmarshal(res.Raw, &b); err != nil {
		e.t.Fatal(err)
	}
	b.Raw = res.Raw
	return b
}

// stateTypes lists "type/state_key" of state events, sorted.
func stateTypes(evs []event) []string {
	var out []string
	for _, ev := range evs {
		sk := ""
		if ev.StateKey != nil {
			sk = *ev.StateKey
		}
		out = append(out, ev.Type+"/"+sk)
	}
	sort.Strings(out)
	return out
}

// TestSyncSeedWorkedExample is the worked example of Dendrite's sync notes:
// a timeline [A, B, C, D, 1, 2, 3, D', 4, D”, 5, B', D”', D””, 6] at
// positions 1..15 (relative to the room's creation here).
func TestSyncSeedWorkedExample(t *testing.T) {
	e := newEnv(t)
	alice := e.user("alice")
	roomID := e.room(alice, core.PresetPrivateChat)
	base := e.n.StreamPosition()
	ids := map[string]string{}
	step := func(label string) {
		var id string
		switch label[0] {
		case 'A', 'B', 'C', 'D':
			sk := ""
			raw, _ := json.Marshal(map[string]string{"v": label})
			var err error
			id, err = e.n.SendEvent(context.Background(), core.SendRequest{
				Sender: alice.UserID, RoomID: roomID, Type: "x.state." + label[:1], StateKey: &sk, Content: raw,
			})
			if err != nil {
				t.Fatal(err)
			}
		default:
			id = e.say(alice, roomID, label)
		}
		ids[label] = id
	}
	labels := []string{"A", "B", "C", "D", "1", "2", "3", "D'", "4", "D''", "5", "B'", "D'''", "D''''", "6"}
	for _, l := range labels {
		step(l)
	}
	since := func(i int) string { return "s" + strconv.FormatUint(base+uint64(i), 10) }
	filter := `{"room":{"timeline":{"limit":5}}}`
	label := func(evs []event) []string {
		var out []string
		for _, ev := range evs {
			for l, id := range ids {
				if id == ev.EventID {
					out = append(out, l)
				}
			}
		}
		return out
	}

	b := e.sync(alice, vals("since", since(14), "filter", filter))
	room := b.Rooms.Join[roomID]
	if got := label(room.Timeline.Events); !slices.Equal(got, []string{"6"}) || room.Timeline.Limited {
		t.Errorf("since=14: timeline %v limited %v, want [6] not limited", got, room.Timeline.Limited)
	}
	if len(room.State.Events) != 0 {
		t.Errorf("since=14: state %v, want none", stateTypes(room.State.Events))
	}

	b = e.sync(alice, vals("since", since(9), "filter", filter))
	room = b.Rooms.Join[roomID]
	if got := label(room.Timeline.Events); !slices.Equal(got, []string{"5", "B'", "D'''", "D''''", "6"}) || !room.Timeline.Limited {
		t.Errorf("since=9: timeline %v limited %v, want [5 B' D''' D'''' 6] limited", got, room.Timeline.Limited)
	}
	if got := label(room.State.Events); !slices.Equal(got, []string{"D''"}) {
		t.Errorf("since=9 incremental state %v, want [D'']", got)
	}

	b = e.sync(alice, vals("since", since(9), "filter", filter, "full_state", "true"))
	room = b.Rooms.Join[roomID]
	got := label(room.State.Events)
	sort.Strings(got)
	if !slices.Equal(got, []string{"A", "B", "C", "D''"}) {
		t.Errorf("since=9 full state (test-made events) %v, want [A B C D'']", got)
	}
	if len(room.State.Events) != 4+6 { // plus the room's 6 initial state events
		t.Errorf("full state has %d events: %v", len(room.State.Events), stateTypes(room.State.Events))
	}

	// prev_batch fills the gap exactly: D'' (10) then back to the start.
	page := e.messages(alice, roomID, vals("dir", "b", "from", room.Timeline.PrevBatch, "limit", "1"))
	if got := label(page.Chunk); !slices.Equal(got, []string{"D''"}) {
		t.Errorf("/messages from prev_batch: %v, want [D'']", got)
	}
}
