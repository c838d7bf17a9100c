package mediaref_test

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/edgenode/edgenode/node/core"
	"github.com/edgenode/edgenode/node/mediaref"
	"github.com/matrix-org/gomatrixserverlib"
)

const local, remote = "local.example", "remote.example"

// event is a trusted PDU of sender with content (and stateKey, if set).
func event(t *testing.T, typ, sender string, stateKey *string, content any) gomatrixserverlib.PDU {
	t.Helper()
	c, err := json.Marshal(content)
	if err != nil {
		t.Fatal(err)
	}
	ev := map[string]any{
		"room_id": "!r:" + local, "type": typ, "sender": sender, "content": json.RawMessage(c),
		"origin_server_ts": 1, "depth": 2, "prev_events": []string{}, "auth_events": []string{},
		"hashes": map[string]string{"sha256": "x"}, "signatures": map[string]any{},
	}
	if stateKey != nil {
		ev["state_key"] = *stateKey
	}
	raw, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	pdu, err := gomatrixserverlib.MustGetRoomVersion(gomatrixserverlib.RoomVersionV10).NewEventFromTrustedJSON(raw, false)
	if err != nil {
		t.Fatal(err)
	}
	return pdu
}

// refsOf runs the indexer over one commit of evs and returns what it queued.
func refsOf(t *testing.T, q *mediaref.Queue, members map[string]string, evs ...gomatrixserverlib.PDU) []mediaref.Ref {
	t.Helper()
	c := &core.RoomCommit{RoomID: "!r:" + local, Members: members}
	for i, ev := range evs {
		c.Events = append(c.Events, core.CommittedEvent{PDU: ev, Pos: uint64(i + 1)})
	}
	after, err := mediaref.Indexer{Queue: q}.Index(nil, c, core.IndexPlan{})
	if err != nil {
		t.Fatal(err)
	}
	if after != nil {
		after()
	}
	var out []mediaref.Ref
	for {
		select {
		case r := <-q.C():
			out = append(out, r)
		default:
			return out
		}
	}
}

// TestIndexerRefs: the media references of other servers' events are
// queued (images' thumbnails and files, encrypted attachments', stickers',
// members' own avatars), with their announced sizes; this server's own
// events and media, other message types, malformed URIs, rooms without
// local members and a disabled queue queue nothing.
func TestIndexerRefs(t *testing.T) {
	bob, alice := "@bob:"+remote, "@alice:"+local
	members := map[string]string{alice: "join"}
	q := mediaref.NewQueue(local)
	q.SetEnabled(true)
	mxc := func(origin, id string) string { return "mxc://" + origin + "/" + id }
	cases := []struct {
		name string
		ev   gomatrixserverlib.PDU
		want []mediaref.Ref
	}{
		{"image with thumbnail", event(t, "m.room.message", bob, nil, map[string]any{
			"msgtype": "m.image", "url": mxc(remote, "pic"),
			"info": map[string]any{"size": 1234, "thumbnail_url": mxc(remote, "th"), "thumbnail_info": map[string]any{"size": 56}},
		}), []mediaref.Ref{{Origin: remote, ID: "th", Kind: mediaref.Thumbnail, Size: 56}, {Origin: remote, ID: "pic", Kind: mediaref.File, Size: 1234}}},
		{"encrypted file", event(t, "m.room.message", bob, nil, map[string]any{
			"msgtype": "m.file", "file": map[string]any{"url": mxc(remote, "enc")},
			"info": map[string]any{"thumbnail_file": map[string]any{"url": mxc(remote, "encth")}},
		}), []mediaref.Ref{{Origin: remote, ID: "encth", Kind: mediaref.Thumbnail}, {Origin: remote, ID: "enc", Kind: mediaref.File}}},
		{"audio", event(t, "m.room.message", bob, nil, map[string]any{"msgtype": "m.audio", "url": mxc(remote, "voice")}),
			[]mediaref.Ref{{Origin: remote, ID: "voice", Kind: mediaref.File}}},
		{"video of a third server", event(t, "m.room.message", bob, nil, map[string]any{"msgtype": "m.video", "url": mxc("third.example", "v")}),
			[]mediaref.Ref{{Origin: "third.example", ID: "v", Kind: mediaref.File}}},
		{"sticker", event(t, "m.sticker", bob, nil, map[string]any{"url": mxc(remote, "st")}),
			[]mediaref.Ref{{Origin: remote, ID: "st", Kind: mediaref.File}}},
		{"avatar", event(t, "m.room.member", bob, &bob, map[string]any{"membership": "join", "avatar_url": mxc(remote, "av")}),
			[]mediaref.Ref{{Origin: remote, ID: "av", Kind: mediaref.Avatar}}},
		{"someone else's member event", event(t, "m.room.member", bob, &alice, map[string]any{"membership": "invite", "avatar_url": mxc(remote, "av")}), nil},
		{"text", event(t, "m.room.message", bob, nil, map[string]any{"msgtype": "m.text", "body": "x", "url": mxc(remote, "x")}), nil},
		{"own server's event", event(t, "m.room.message", alice, nil, map[string]any{"msgtype": "m.image", "url": mxc(remote, "x")}), nil},
		{"own server's media", event(t, "m.room.message", bob, nil, map[string]any{"msgtype": "m.image", "url": mxc(local, "x")}), nil},
		{"malformed URIs", event(t, "m.room.message", bob, nil, map[string]any{"msgtype": "m.image", "url": "https://" + remote + "/x",
			"info": map[string]any{"thumbnail_url": "mxc://" + remote}, "file": map[string]any{"url": "mxc://" + remote + "/a/b"}}), nil},
		{"negative size", event(t, "m.room.message", bob, nil, map[string]any{"msgtype": "m.file", "url": mxc(remote, "f"), "info": map[string]any{"size": -5}}),
			[]mediaref.Ref{{Origin: remote, ID: "f", Kind: mediaref.File}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := refsOf(t, q, members, c.ev)
			if fmt.Sprint(got) != fmt.Sprint(c.want) {
				t.Fatalf("queued %+v, want %+v", got, c.want)
			}
		})
	}
	img := cases[0].ev
	if got := refsOf(t, q, nil, img); got != nil {
		t.Errorf("room without local members: queued %+v", got)
	}
	q.SetEnabled(false)
	if got := refsOf(t, q, members, img); got != nil {
		t.Errorf("disabled queue: queued %+v", got)
	}
}

// TestQueueDropsWhenFull: a full queue never blocks the commit's action;
// what does not fit is dropped and counted.
func TestQueueDropsWhenFull(t *testing.T) {
	q := mediaref.NewQueue(local)
	q.SetEnabled(true)
	bob := "@bob:" + remote
	var evs []gomatrixserverlib.PDU
	for i := range mediaref.QueueSize + 10 {
		evs = append(evs, event(t, "m.room.message", bob, nil, map[string]any{"msgtype": "m.file", "url": fmt.Sprintf("mxc://%s/f%d", remote, i)}))
	}
	c := &core.RoomCommit{Members: map[string]string{"@alice:" + local: "join"}}
	for i, ev := range evs {
		c.Events = append(c.Events, core.CommittedEvent{PDU: ev, Pos: uint64(i + 1)})
	}
	after, err := mediaref.Indexer{Queue: q}.Index(nil, c, core.IndexPlan{})
	if err != nil || after == nil {
		t.Fatalf("Index: no action (%v)", err)
	}
	after() // returns although the queue fills up
	if got := q.Dropped(); got != 10 {
		t.Errorf("dropped %d, want 10", got)
	}
	if got := len(q.C()); got != mediaref.QueueSize {
		t.Errorf("queued %d, want %d", got, mediaref.QueueSize)
	}
}
