package syncapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"
)

// allExtensions enables every extension; to-device and sticky events page
// from their since tokens (empty: from the start).
func allExtensions(toDeviceSince, stickySince string, stickyLimit int) map[string]any {
	return map[string]any{
		"to_device":                        map[string]any{"enabled": true, "since": toDeviceSince, "limit": 100},
		"e2ee":                             map[string]any{"enabled": true},
		"account_data":                     map[string]any{"enabled": true},
		"receipts":                         map[string]any{"enabled": true},
		"typing":                           map[string]any{"enabled": true},
		"org.matrix.msc4354.sticky_events": map[string]any{"enabled": true, "since": stickySince, "limit": stickyLimit},
	}
}

// ssExt decodes one extension of a response (false when absent).
func ssExt(t *testing.T, res ssResp, name string, v any) bool {
	t.Helper()
	raw, ok := res.Extensions[name]
	if !ok {
		return false
	}
	if err := json.Unmarshal(raw, v); err != nil {
		t.Fatalf("extension %s: %v: %s", name, err, raw)
	}
	return true
}

type ssStickyExt struct {
	NextBatch string `json:"next_batch"`
	Rooms     map[string]struct {
		Events []event `json:"events"`
	} `json:"rooms"`
}

// TestSlidingSyncExtensions: to_device delivers and acknowledges by its own
// since; e2ee carries key counts; account_data, receipts and typing carry
// what changed in the rooms of the windows.
func TestSlidingSyncExtensions(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	alice, bob := e.user("alice"), e.user("bob")
	room := e.room(alice, "public_chat")
	e.join(bob, room)
	msg := e.say(alice, room, "hello")
	if err := e.n.SendToDevice(ctx, alice.UserID, alice.DeviceID, "m.test", "t1",
		map[string]map[string]json.RawMessage{bob.UserID: {bob.DeviceID: json.RawMessage(`{"n":1}`)}}); err != nil {
		t.Fatal(err)
	}
	if err := e.n.SetAccountData(ctx, bob.UserID, "", "m.test.global", json.RawMessage(`{"x":1}`)); err != nil {
		t.Fatal(err)
	}
	if err := e.n.SetAccountData(ctx, bob.UserID, room, "m.test.room", json.RawMessage(`{"y":1}`)); err != nil {
		t.Fatal(err)
	}
	lists := map[string]any{"l": ssList(0, 9, 1)}
	res := e.ss(bob, map[string]any{"lists": lists, "extensions": allExtensions("", "", 100)})

	var td struct {
		NextBatch string `json:"next_batch"`
		Events    []struct {
			Type   string `json:"type"`
			Sender string `json:"sender"`
		} `json:"events"`
	}
	if !ssExt(t, res, "to_device", &td) || len(td.Events) != 1 || td.Events[0].Type != "m.test" || td.NextBatch == "" {
		t.Fatalf("to_device: %s", res.Raw)
	}
	var e2ee struct {
		OTK map[string]int `json:"device_one_time_keys_count"`
	}
	if !ssExt(t, res, "e2ee", &e2ee) || e2ee.OTK == nil {
		t.Errorf("e2ee: %s", res.Extensions["e2ee"])
	}
	var ad struct {
		Global []struct{ Type string } `json:"global"`
		Rooms  map[string][]struct{ Type string }
	}
	if !ssExt(t, res, "account_data", &ad) || !slices.ContainsFunc(ad.Global, func(x struct{ Type string }) bool { return x.Type == "m.test.global" }) ||
		len(ad.Rooms[room]) != 1 || ad.Rooms[room][0].Type != "m.test.room" {
		t.Errorf("account_data: %s", res.Extensions["account_data"])
	}

	// Next: the to-device message is acknowledged by the since token; a
	// receipt and typing arrive.
	if err := e.n.SetReceipt(ctx, alice.UserID, room, "m.read", msg, ""); err != nil {
		t.Fatal(err)
	}
	if err := e.n.SetTyping(ctx, alice.UserID, room, true, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	res = e.ss(bob, map[string]any{"pos": res.Pos, "lists": lists, "extensions": allExtensions(td.NextBatch, "", 100)})
	var td2 struct {
		Events []any `json:"events"`
	}
	if !ssExt(t, res, "to_device", &td2) || len(td2.Events) != 0 {
		t.Errorf("to_device after its since: %s", res.Extensions["to_device"])
	}
	var rc, ty struct {
		Rooms map[string]struct {
			Type    string          `json:"type"`
			Content json.RawMessage `json:"content"`
		} `json:"rooms"`
	}
	if !ssExt(t, res, "receipts", &rc) || rc.Rooms[room].Type != "m.receipt" || !json.Valid(rc.Rooms[room].Content) {
		t.Errorf("receipts: %s", res.Raw)
	}
	if !ssExt(t, res, "typing", &ty) || ty.Rooms[room].Type != "m.typing" {
		t.Errorf("typing: %s", res.Raw)
	}
	var ad2 struct {
		Global []any `json:"global"`
	}
	if ssExt(t, res, "account_data", &ad2) && len(ad2.Global) > 0 {
		t.Errorf("account data resent: %s", res.Extensions["account_data"])
	}
}

// TestSlidingSyncStickyExtension: the sticky events extension (MSC4480)
// delivers unexpired sticky events oldest first, limit at a time, with its
// own next_batch; events already in the response's timelines are left out,
// and rooms outside the list's range but in the list count.
func TestSlidingSyncStickyExtension(t *testing.T) {
	e := newEnv(t)
	alice, bob, room := stickyRoom(e)
	var sent []string
	for i := range 3 {
		sent = append(sent, e.sendSticky(alice, room, fmt.Sprint("s", i), 300000))
	}
	other := e.room(bob, "private_chat") // newer: room is outside [0,0]
	e.say(bob, other, "bump")
	lists := map[string]any{"l": ssList(0, 0, 1)}
	ext := func(since string) map[string]any {
		return map[string]any{"org.matrix.msc4354.sticky_events": map[string]any{"enabled": true, "since": since, "limit": 2}}
	}
	res := e.ss(bob, map[string]any{"lists": lists, "extensions": ext("")})
	if _, ok := res.Rooms[room]; ok {
		t.Fatalf("room should be outside the range: %s", res.Raw)
	}
	var st ssStickyExt
	if !ssExt(t, res, "org.matrix.msc4354.sticky_events", &st) || !slices.Equal(ids(st.Rooms[room].Events), sent[:2]) || st.NextBatch == "" {
		t.Fatalf("first page: %s", res.Raw)
	}
	res = e.ss(bob, map[string]any{"pos": res.Pos, "lists": lists, "extensions": ext(st.NextBatch)})
	var st2 ssStickyExt
	if !ssExt(t, res, "org.matrix.msc4354.sticky_events", &st2) || !slices.Equal(ids(st2.Rooms[room].Events), sent[2:]) {
		t.Fatalf("second page: %s", res.Raw)
	}
	// A new sticky event in a room in the window comes in its timeline, not
	// again in the extension.
	res = e.ss(bob, map[string]any{"pos": res.Pos, "lists": map[string]any{"l": ssList(0, 1, 5)}, "extensions": ext(st2.NextBatch)})
	var st3 ssStickyExt
	ssExt(t, res, "org.matrix.msc4354.sticky_events", &st3)
	id := e.sendSticky(alice, room, "live", 300000)
	res = e.ss(bob, map[string]any{"pos": res.Pos, "lists": map[string]any{"l": ssList(0, 1, 5)}, "extensions": ext(orElse(st3.NextBatch, st2.NextBatch))})
	if tl := res.Rooms[room].Timeline; len(tl) == 0 || tl[len(tl)-1].EventID != id {
		t.Fatalf("live sticky event not in the timeline: %s", res.Raw)
	}
	var st4 ssStickyExt
	if ssExt(t, res, "org.matrix.msc4354.sticky_events", &st4) && len(st4.Rooms[room].Events) > 0 {
		t.Errorf("sticky event repeated in the extension: %s", res.Raw)
	}
}

func orElse(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// TestSlidingSyncE2EEDeviceLists: a user joining a room the syncing user is
// in shows in e2ee's device_lists.changed even when that room is outside
// every window; one leaving the only shared room shows in left.
func TestSlidingSyncE2EEDeviceLists(t *testing.T) {
	e := newEnv(t)
	alice, carol := e.user("alice"), e.user("carol")
	shared := e.room(alice, "public_chat")
	e.room(alice, "private_chat") // newer: shared is outside [0,0]
	body := func(pos string) map[string]any {
		b := map[string]any{"lists": map[string]any{"l": ssList(0, 0, 1)}, "extensions": map[string]any{"e2ee": map[string]any{"enabled": true}}}
		if pos != "" {
			b["pos"] = pos
		}
		return b
	}
	res := e.ss(alice, body(""))
	if _, ok := res.Rooms[shared]; ok {
		t.Fatalf("shared room should be outside the window: %s", res.Raw)
	}
	e.join(carol, shared)
	type dl struct {
		DeviceLists *struct {
			Changed []string `json:"changed"`
			Left    []string `json:"left"`
		} `json:"device_lists"`
	}
	res = e.ss(alice, body(res.Pos))
	var got dl
	if !ssExt(t, res, "e2ee", &got) || got.DeviceLists == nil || !slices.Contains(got.DeviceLists.Changed, carol.UserID) {
		t.Fatalf("carol's join not in device_lists.changed: %s", res.Raw)
	}
	e.membership(carol, shared, carol.UserID, "leave")
	res = e.ss(alice, body(res.Pos))
	got = dl{}
	if !ssExt(t, res, "e2ee", &got) || got.DeviceLists == nil || !slices.Contains(got.DeviceLists.Left, carol.UserID) {
		t.Fatalf("carol's leave not in device_lists.left: %s", res.Raw)
	}
}
