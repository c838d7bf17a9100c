package clientapi_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/edgenode/edgenode/internal/testnode"
)

const userSearch = v3 + "/user_directory/search"

// found is one search's answer: user ID -> display name, and limited.
type found struct {
	names   map[string]string
	order   []string
	limited bool
}

// searchUsers searches the directory as u and fails the test on anything
// but 200 with the spec's shape.
func searchUsers(t *testing.T, n *testnode.Node, u testnode.User, body map[string]any) found {
	t.Helper()
	res := n.Do("POST", userSearch, u.Token, body)
	expect(t, res, http.StatusOK, "")
	limited, ok := res.Body["limited"].(bool)
	results, ok2 := res.Body["results"].([]any)
	if !ok || !ok2 {
		t.Fatalf("search %v: body %s", body, res.Raw)
	}
	f := found{names: map[string]string{}, limited: limited}
	for _, r := range results {
		m, _ := r.(map[string]any)
		id, _ := m["user_id"].(string)
		if !strings.HasPrefix(id, "@") {
			t.Fatalf("result without a user_id: %s", res.Raw)
		}
		name, _ := m["display_name"].(string)
		f.names[id] = name
		f.order = append(f.order, id)
	}
	return f
}

func setDisplayName(t *testing.T, n *testnode.Node, u testnode.User, name string) {
	t.Helper()
	expect(t, n.Do("PUT", v3+"/profile/"+esc(u.UserID)+"/displayname", u.Token, map[string]any{"displayname": name}), http.StatusOK, "")
}

func joinRoom(t *testing.T, n *testnode.Node, u testnode.User, roomID string) {
	t.Helper()
	expect(t, n.Do("POST", v3+"/join/"+esc(roomID), u.Token, map[string]any{}), http.StatusOK, "")
}

func putState(t *testing.T, n *testnode.Node, u testnode.User, roomID, evType, stateKey string, content map[string]any) {
	t.Helper()
	expect(t, n.Do("PUT", v3+"/rooms/"+esc(roomID)+"/state/"+evType+"/"+esc(stateKey), u.Token, content), http.StatusOK, "")
}

// TestUserDirectorySearch: who a user finds, on one node, as rooms and
// profiles change.
func TestUserDirectorySearch(t *testing.T) {
	t.Parallel()
	n := testnode.Start(t, testnode.Options{})
	alice := n.Register("alice")
	bob := n.Register("bob")
	carol := n.Register("carol")
	dave := n.Register("dave")
	eve := n.Register("eve")
	setDisplayName(t, n, alice, "Alice Cooper")
	setDisplayName(t, n, bob, "Robert Builder")
	setDisplayName(t, n, carol, "Carol Singer")
	setDisplayName(t, n, dave, "Dave Hidden")

	// alice and bob share a private room; carol is alone in a public one;
	// dave is alone in a private one; alice is in a public one too, so
	// that eve, who shares nothing, may find her.
	private := createRoom(t, n, alice, map[string]any{"preset": "private_chat", "invite": []string{bob.UserID}})
	joinRoom(t, n, bob, private)
	createRoom(t, n, carol, map[string]any{"preset": "public_chat"})
	davesRoom := createRoom(t, n, dave, map[string]any{"preset": "private_chat"})
	createRoom(t, n, alice, map[string]any{"preset": "public_chat"})

	has := func(f found, id, name string) bool { got, ok := f.names[id]; return ok && got == name }
	cases := []struct {
		name    string
		as      testnode.User
		term    string
		want    map[string]string // user ID -> display name that must be found
		wantNot []string          // user IDs that must not be
	}{
		{"shared room, display name prefix", alice, "rob", map[string]string{bob.UserID: "Robert Builder"}, nil},
		{"shared room, second word prefix, any case", alice, "BUIL", map[string]string{bob.UserID: "Robert Builder"}, nil},
		{"shared room, localpart", alice, "bob", map[string]string{bob.UserID: "Robert Builder"}, nil},
		{"shared room, full user ID", alice, bob.UserID, map[string]string{bob.UserID: "Robert Builder"}, nil},
		{"two words must both match", alice, "robert cooper", nil, []string{bob.UserID, alice.UserID}},
		{"word inside a name is no match", alice, "obert", nil, []string{bob.UserID}},
		{"public room not shared", alice, "singer", map[string]string{carol.UserID: "Carol Singer"}, nil},
		{"private room not shared", alice, "dave", nil, []string{dave.UserID}},
		{"private room not shared, by name", alice, "hidden", nil, []string{dave.UserID}},
		{"nothing shared, public room", eve, "alice", map[string]string{alice.UserID: "Alice Cooper"}, nil},
		{"nothing shared, private room", eve, "robert", nil, []string{bob.UserID}},
		{"no words", alice, " ,.! ", nil, []string{alice.UserID, bob.UserID, carol.UserID}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := searchUsers(t, n, c.as, map[string]any{"search_term": c.term})
			for id, name := range c.want {
				if !has(f, id, name) {
					t.Errorf("%q: want %s (%q) in %v", c.term, id, name, f.names)
				}
			}
			for _, id := range c.wantNot {
				if _, ok := f.names[id]; ok {
					t.Errorf("%q: %s found: %v", c.term, id, f.names)
				}
			}
		})
	}

	t.Run("display name change", func(t *testing.T) {
		setDisplayName(t, n, carol, "Caroline Quux")
		if f := searchUsers(t, n, alice, map[string]any{"search_term": "quux"}); !has(f, carol.UserID, "Caroline Quux") {
			t.Errorf("new name not found: %v", f.names)
		}
		if f := searchUsers(t, n, alice, map[string]any{"search_term": "singer"}); len(f.names) != 0 {
			t.Errorf("old name still found: %v", f.names)
		}
	})

	t.Run("join rule made public, then not", func(t *testing.T) {
		putState(t, n, dave, davesRoom, "m.room.join_rules", "", map[string]any{"join_rule": "public"})
		if f := searchUsers(t, n, alice, map[string]any{"search_term": "hidden"}); !has(f, dave.UserID, "Dave Hidden") {
			t.Errorf("dave not found once his room is public: %v", f.names)
		}
		putState(t, n, dave, davesRoom, "m.room.join_rules", "", map[string]any{"join_rule": "invite"})
		if f := searchUsers(t, n, alice, map[string]any{"search_term": "hidden"}); len(f.names) != 0 {
			t.Errorf("dave found once his room is private again: %v", f.names)
		}
	})

	t.Run("world-readable history", func(t *testing.T) {
		putState(t, n, dave, davesRoom, "m.room.history_visibility", "", map[string]any{"history_visibility": "world_readable"})
		if f := searchUsers(t, n, alice, map[string]any{"search_term": "hidden"}); !has(f, dave.UserID, "Dave Hidden") {
			t.Errorf("dave not found in a world-readable room: %v", f.names)
		}
		putState(t, n, dave, davesRoom, "m.room.history_visibility", "", map[string]any{"history_visibility": "shared"})
	})

	t.Run("after leave", func(t *testing.T) {
		expect(t, n.Do("POST", v3+"/rooms/"+esc(private)+"/leave", bob.Token, map[string]any{}), http.StatusOK, "")
		if f := searchUsers(t, n, alice, map[string]any{"search_term": "robert"}); len(f.names) != 0 {
			t.Errorf("bob still found after leaving the only shared room: %v", f.names)
		}
		// ... and alice no longer finds herself through that room either
		// for bob, who now shares nothing with her: only her public room.
		if f := searchUsers(t, n, bob, map[string]any{"search_term": "alice"}); !has(f, alice.UserID, "Alice Cooper") {
			t.Errorf("bob does not find alice through her public room: %v", f.names)
		}
	})
}

// TestUserDirectoryPerRoomName: a per-room display name in a private room
// is found only by those who share the room, and a local user is shown
// with their global name (Complement's TestRoomSpecificUsername*).
func TestUserDirectoryPerRoomName(t *testing.T) {
	t.Parallel()
	n := testnode.Start(t, testnode.Options{})
	alice := n.Register("alice")
	bob := n.Register("bob")
	eve := n.Register("eve")
	setDisplayName(t, n, alice, "Alice Cooper")
	createRoom(t, n, alice, map[string]any{"preset": "public_chat"})
	private := createRoom(t, n, alice, map[string]any{"preset": "private_chat", "invite": []string{bob.UserID}})
	joinRoom(t, n, bob, private)
	putState(t, n, alice, private, "m.room.member", alice.UserID, map[string]any{"membership": "join", "displayname": "Freddy"})

	if f := searchUsers(t, n, eve, map[string]any{"search_term": "freddy"}); len(f.names) != 0 {
		t.Errorf("eve finds alice by a name she is not privy to: %v", f.names)
	}
	for _, term := range []string{"cooper", "alice"} {
		for _, u := range []testnode.User{eve, bob} {
			f := searchUsers(t, n, u, map[string]any{"search_term": term})
			if f.names[alice.UserID] != "Alice Cooper" {
				t.Errorf("%s searching %q: got %v, want alice as Alice Cooper", u.UserID, term, f.names)
			}
		}
	}
}

// TestUserDirectoryLimit: limit bounds the results and limited says so.
func TestUserDirectoryLimit(t *testing.T) {
	t.Parallel()
	n := testnode.Start(t, testnode.Options{})
	alice := n.Register("alice")
	room := createRoom(t, n, alice, map[string]any{"preset": "public_chat"})
	var zeds []string
	for _, lp := range []string{"zed1", "zed2", "zed3"} {
		u := n.Register(lp)
		joinRoom(t, n, u, room)
		zeds = append(zeds, u.UserID)
	}
	cases := []struct {
		name    string
		body    map[string]any
		n       int
		limited bool
	}{
		{"default limit", map[string]any{"search_term": "zed"}, 3, false},
		{"limit 2", map[string]any{"search_term": "zed", "limit": 2}, 2, true},
		{"limit 3", map[string]any{"search_term": "zed", "limit": 3}, 3, false},
		{"limit 0", map[string]any{"search_term": "zed", "limit": 0}, 0, true},
		{"negative limit", map[string]any{"search_term": "zed", "limit": -5}, 0, true},
		{"huge limit is clamped", map[string]any{"search_term": "zed", "limit": 1e300}, 3, false},
		{"null limit is the default", map[string]any{"search_term": "zed", "limit": nil}, 3, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := searchUsers(t, n, alice, c.body)
			if len(f.order) != c.n || f.limited != c.limited {
				t.Fatalf("got %v limited %v, want %d results limited %v", f.order, f.limited, c.n, c.limited)
			}
			for _, id := range f.order {
				if !slices.Contains(zeds, id) {
					t.Errorf("unexpected %s", id)
				}
			}
		})
	}
}

// TestUserDirectoryErrors: what a malformed search gets.
func TestUserDirectoryErrors(t *testing.T) {
	t.Parallel()
	n := testnode.Start(t, testnode.Options{})
	alice := n.Register("alice")
	runCases(t, n, []apiCase{
		{name: "no token", method: "POST", path: userSearch, body: map[string]any{"search_term": "a"}, status: 401, errcode: "M_MISSING_TOKEN"},
		{name: "not JSON", method: "POST", path: userSearch, token: alice.Token, body: []byte("{search"), status: 400, errcode: "M_NOT_JSON"},
		{name: "not an object", method: "POST", path: userSearch, token: alice.Token, body: []byte(`["a"]`), status: 400, errcode: "M_BAD_JSON"},
		{name: "missing search_term", method: "POST", path: userSearch, token: alice.Token, body: map[string]any{"limit": 3}, status: 400, errcode: "M_MISSING_PARAM"},
		{name: "search_term not a string", method: "POST", path: userSearch, token: alice.Token, body: map[string]any{"search_term": 5}, status: 400, errcode: "M_BAD_JSON"},
		{name: "limit not a number", method: "POST", path: userSearch, token: alice.Token, body: map[string]any{"search_term": "a", "limit": "10"}, status: 400, errcode: "M_BAD_JSON"},
		{name: "limit a fraction", method: "POST", path: userSearch, token: alice.Token, body: map[string]any{"search_term": "a", "limit": 2.5}, status: 400, errcode: "M_BAD_JSON"},
		{name: "search_term too long", method: "POST", path: userSearch, token: alice.Token, body: map[string]any{"search_term": strings.Repeat("a ", 501)}, status: 400, errcode: "M_INVALID_PARAM"},
		{name: "body too large", method: "POST", path: userSearch, token: alice.Token, body: map[string]any{"search_term": strings.Repeat("a", 8<<10)}, status: 413, errcode: "M_TOO_LARGE"},
		{name: "empty term", method: "POST", path: userSearch, token: alice.Token, body: map[string]any{"search_term": ""}, status: 200,
			check: func(t *testing.T, res testnode.Response) {
				if string(res.Raw) != `{"results":[],"limited":false}` {
					t.Errorf("body %s", res.Raw)
				}
			}},
	})
}

// TestUserDirectoryServerNameRanksLast: a search that starts the node's
// server name (a hex key) matches every user of the node; the one whose
// display name it starts comes first.
func TestUserDirectoryServerNameRanksLast(t *testing.T) {
	t.Parallel()
	n := testnode.Start(t, testnode.Options{})
	alice := n.Register("alice")
	room := createRoom(t, n, alice, map[string]any{"preset": "public_chat"})
	_, server, _ := strings.Cut(alice.UserID, ":")
	prefix := server[:4]
	var named testnode.User
	for _, lp := range []string{"aaa", "bbb", "named", "ccc"} {
		u := n.Register(lp)
		joinRoom(t, n, u, room)
		if lp == "named" {
			named = u
			setDisplayName(t, n, u, prefix+"zz Named")
		} else {
			setDisplayName(t, n, u, "!"+lp) // sorts before any name that starts with a letter or digit
		}
	}
	f := searchUsers(t, n, alice, map[string]any{"search_term": prefix, "limit": 10})
	if len(f.order) != 5 || f.order[0] != named.UserID {
		t.Fatalf("searching %q: %v, want 5 users with %s first", prefix, f.order, named.UserID)
	}
	// A whole user ID is found by its localpart, whatever its server
	// matches.
	f = searchUsers(t, n, alice, map[string]any{"search_term": named.UserID, "limit": 1})
	if len(f.order) != 1 || f.order[0] != named.UserID || f.limited {
		t.Fatalf("searching %s: %v limited %v", named.UserID, f.order, f.limited)
	}
}
