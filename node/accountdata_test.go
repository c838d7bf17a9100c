package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/edgenode/edgenode/node/core"
)

// changeNames renders AccountDataSince's answer as "room/type=content"
// strings ("/type" for global data), in order.
func changeNames(cs []AccountDataChange) []string {
	out := []string{}
	for _, c := range cs {
		out = append(out, c.RoomID+"/"+c.Type+"="+string(c.Content))
	}
	return out
}

func TestAccountDataSince(t *testing.T) {
	ctx := context.Background()
	n := fastNode(t)
	alice, bob := session(n, "alice"), session(n, "bob")
	room := "!r:" + n.ServerName()
	set := func(s Session, roomID, typ, content string) uint64 {
		t.Helper()
		if err := n.SetAccountData(ctx, s.UserID, roomID, typ, json.RawMessage(content)); err != nil {
			t.Fatalf("set %s: %v", typ, err)
		}
		return n.AccountDataPosition()
	}
	p0 := n.AccountDataPosition()
	p1 := set(alice, "", "a", `{"v": 1}`)
	p2 := set(alice, room, "t", `{"v":1}`)
	p3 := set(bob, "", "a", `{"bob":true}`)
	p4 := set(alice, "", "b", `{"v":1}`)
	p5 := set(alice, "", "a", `{"v":2}`) // supersedes p1
	if p1 <= p0 || p2 <= p1 || p3 <= p2 || p4 <= p3 || p5 <= p4 {
		t.Fatalf("positions do not grow: %d %d %d %d %d %d", p0, p1, p2, p3, p4, p5)
	}

	tests := []struct {
		name     string
		from, to uint64
		want     []string
	}{
		{"everything, latest values only, in stream order", 0, p5, []string{"!r:" + n.ServerName() + "/t={\"v\":1}", "/b={\"v\":1}", "/a={\"v\":2}"}},
		{"from is exclusive", p2, p5, []string{"/b={\"v\":1}", "/a={\"v\":2}"}},
		{"to is inclusive", p1, p4, []string{"!r:" + n.ServerName() + "/t={\"v\":1}", "/b={\"v\":1}"}},
		{"a value changed after to waits for the next call", 0, p1, []string{}},
		{"one position", p4, p5, []string{"/a={\"v\":2}"}},
		{"empty range", p5, p5, []string{}},
		{"reversed range", p5, p1, []string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := n.AccountDataSince(ctx, alice.UserID, tc.from, tc.to)
			if err != nil {
				t.Fatal(err)
			}
			if g := changeNames(got); strings.Join(g, " ") != strings.Join(tc.want, " ") {
				t.Errorf("got %q, want %q", g, tc.want)
			}
		})
	}

	t.Run("other users' data is not included", func(t *testing.T) {
		got, _ := n.AccountDataSince(ctx, bob.UserID, 0, p5)
		if g := changeNames(got); len(g) != 1 || g[0] != `/a={"bob":true}` {
			t.Errorf("bob's changes %q", g)
		}
	})
	t.Run("superseded index entries are deleted", func(t *testing.T) {
		if c := countPrefix(t, n, accountDataStreamPrefix(alice.UserID)); c != 3 {
			t.Errorf("%d index entries for alice's 3 values", c)
		}
	})
	t.Run("writing the stored value again changes nothing", func(t *testing.T) {
		ls := listeners(t, n, alice)
		if got := set(alice, "", "a", `{ "v" : 2 }`); got != p5 {
			t.Errorf("position moved to %d", got)
		}
		checkWoken(t, ls)
	})
	t.Run("get", func(t *testing.T) {
		got, err := n.AccountData(ctx, alice.UserID, room, "t")
		if err != nil || string(got) != `{"v":1}` {
			t.Errorf("got %s, %v", got, err)
		}
		if _, err := n.AccountData(ctx, alice.UserID, "", "t"); !errors.Is(err, core.ErrNotFound) {
			t.Errorf("global t: %v, want ErrNotFound (it is room data)", err)
		}
		if _, err := n.AccountData(ctx, bob.UserID, room, "t"); !errors.Is(err, core.ErrNotFound) {
			t.Errorf("bob's t: %v, want ErrNotFound", err)
		}
	})
}

func TestAccountDataWakesOnlyItsUser(t *testing.T) {
	n := fastNode(t)
	alice, bob := session(n, "alice"), session(n, "bob")
	sharedRoom(t, n, alice, bob)
	ls := listeners(t, n, alice, bob)
	if err := n.SetAccountData(context.Background(), alice.UserID, "", "x", json.RawMessage(`{}`)); err != nil {
		t.Fatal(err)
	}
	checkWoken(t, ls, alice)
}

func TestAccountDataInvalid(t *testing.T) {
	n := fastNode(t)
	user := n.UserID("alice")
	tests := []struct {
		name, roomID, typ, content string
		want                       error
	}{
		{"array content", "", "x", `[1]`, core.ErrBadInput},
		{"string content", "", "x", `"s"`, core.ErrBadInput},
		{"null content", "", "x", `null`, core.ErrBadInput},
		{"not JSON", "", "x", `{`, core.ErrBadInput},
		{"empty type", "", "", `{}`, core.ErrInvalidParam},
		{"long type", "", strings.Repeat("t", 256), `{}`, core.ErrInvalidParam},
		{"bad room ID", "#alias:x", "x", `{}`, core.ErrInvalidParam},
		{"too large", "", "x", `{"a":"` + strings.Repeat("a", maxAccountDataBytes) + `"}`, core.ErrTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := n.SetAccountData(context.Background(), user, tc.roomID, tc.typ, json.RawMessage(tc.content))
			if !errors.Is(err, tc.want) {
				t.Errorf("got %v, want %v", err, tc.want)
			}
		})
	}
	if p := n.AccountDataPosition(); p != 0 {
		t.Errorf("failed writes took positions: %d", p)
	}
}

func TestTags(t *testing.T) {
	ctx := context.Background()
	n := fastNode(t)
	user := n.UserID("alice")
	room := "!r:" + n.ServerName()
	tags := func() string {
		t.Helper()
		raw, err := n.Tags(ctx, user, room)
		if err != nil {
			t.Fatal(err)
		}
		return string(raw)
	}
	steps := []struct {
		name    string
		do      func() error
		want    string // tags after the step
		wantErr error
		moves   bool // whether the step takes a position
	}{
		{"none yet", func() error { return nil }, `{"tags":{}}`, nil, false},
		{"add with order", func() error { return n.SetTag(ctx, user, room, "m.favourite", json.RawMessage(`{"order":0.5}`)) },
			`{"tags":{"m.favourite":{"order":0.5}}}`, nil, true},
		{"add without order", func() error { return n.SetTag(ctx, user, room, "u.work", json.RawMessage(`{}`)) },
			`{"tags":{"m.favourite":{"order":0.5},"u.work":{}}}`, nil, true},
		{"replace", func() error { return n.SetTag(ctx, user, room, "u.work", json.RawMessage(`{"order":1}`)) },
			`{"tags":{"m.favourite":{"order":0.5},"u.work":{"order":1}}}`, nil, true},
		{"order must be a number", func() error { return n.SetTag(ctx, user, room, "u.x", json.RawMessage(`{"order":"1"}`)) },
			`{"tags":{"m.favourite":{"order":0.5},"u.work":{"order":1}}}`, core.ErrBadInput, false},
		{"tag must be an object", func() error { return n.SetTag(ctx, user, room, "u.x", json.RawMessage(`[]`)) },
			`{"tags":{"m.favourite":{"order":0.5},"u.work":{"order":1}}}`, core.ErrBadInput, false},
		{"empty tag name", func() error { return n.SetTag(ctx, user, room, "", json.RawMessage(`{}`)) },
			`{"tags":{"m.favourite":{"order":0.5},"u.work":{"order":1}}}`, core.ErrInvalidParam, false},
		{"delete", func() error { return n.DeleteTag(ctx, user, room, "m.favourite") },
			`{"tags":{"u.work":{"order":1}}}`, nil, true},
		{"delete missing tag", func() error { return n.DeleteTag(ctx, user, room, "m.favourite") },
			`{"tags":{"u.work":{"order":1}}}`, nil, false},
		{"delete the last tag", func() error { return n.DeleteTag(ctx, user, room, "u.work") },
			`{"tags":{}}`, nil, true},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			before := n.AccountDataPosition()
			if err := st.do(); !errors.Is(err, st.wantErr) {
				t.Fatalf("got %v, want %v", err, st.wantErr)
			}
			if got := tags(); got != st.want {
				t.Errorf("tags %s, want %s", got, st.want)
			}
			if moved := n.AccountDataPosition() != before; moved != st.moves {
				t.Errorf("position moved: %v, want %v", moved, st.moves)
			}
		})
	}

	t.Run("m.tag is room account data in the stream", func(t *testing.T) {
		got, _ := n.AccountDataSince(ctx, user, 0, n.AccountDataPosition())
		if g := changeNames(got); len(g) != 1 || g[0] != room+`/m.tag={"tags":{}}` {
			t.Errorf("changes %q", g)
		}
	})
	t.Run("other fields of m.tag set elsewhere are kept", func(t *testing.T) {
		other := "!other:" + n.ServerName()
		if err := n.SetAccountData(ctx, user, other, AccountDataTag, json.RawMessage(`{"x":1,"tags":"junk"}`)); err != nil {
			t.Fatal(err)
		}
		if err := n.SetTag(ctx, user, other, "u.a", json.RawMessage(`{}`)); err != nil {
			t.Fatal(err)
		}
		got, _ := n.AccountData(ctx, user, other, AccountDataTag)
		if string(got) != `{"tags":{"u.a":{}},"x":1}` {
			t.Errorf("m.tag %s", got)
		}
	})
	t.Run("concurrent tag changes are not lost", func(t *testing.T) {
		r := "!busy:" + n.ServerName()
		var wg sync.WaitGroup
		for i := range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := n.SetTag(ctx, user, r, fmt.Sprintf("u.%d", i), json.RawMessage(`{}`)); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		raw, _ := n.Tags(ctx, user, r)
		var got struct{ Tags map[string]any }
		if err := json.Unmarshal(raw, &got); err != nil || len(got.Tags) != 20 {
			t.Errorf("%d tags of 20 (%v): %s", len(got.Tags), err, raw)
		}
	})
}
