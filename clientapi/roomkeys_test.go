package clientapi_test

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/edgenode/edgenode/internal/testnode"
)

const (
	backupAlg = "m.megolm_backup.v1.curve25519-aes-sha2"
	roomKeys  = v3 + "/room_keys/keys"
	backupVer = v3 + "/room_keys/version"
)

// backupKey is a KeyBackupData body; session_data is opaque to the server,
// so a marker in it tells which upload is stored.
func backupKey(fmi, fc int, verified bool, mark string) map[string]any {
	return map[string]any{
		"first_message_index": fmi, "forwarded_count": fc, "is_verified": verified,
		"session_data": map[string]any{"ephemeral": "e", "ciphertext": mark, "mac": "m"},
	}
}

// keysPath is a /room_keys/keys path with the version query.
func keysPath(version string, parts ...string) string {
	p := roomKeys
	for _, s := range parts {
		p += "/" + esc(s)
	}
	return p + "?version=" + url.QueryEscape(version)
}

// counts checks a {etag, count} answer's count and returns its etag.
func countIs(t *testing.T, res testnode.Response, want int) string {
	t.Helper()
	if got, ok := res.Body["count"].(float64); !ok || int(got) != want {
		t.Fatalf("count %v, want %d; body %s", res.Body["count"], want, res.Raw)
	}
	etag, ok := res.Body["etag"].(string)
	if !ok {
		t.Fatalf("no string etag in %s", res.Raw)
	}
	return etag
}

func rawIs(want string) func(t *testing.T, res testnode.Response) {
	return func(t *testing.T, res testnode.Response) {
		t.Helper()
		if string(res.Raw) != want {
			t.Errorf("body %s, want %s", res.Raw, want)
		}
	}
}

func TestKeyBackupVersions(t *testing.T) {
	t.Parallel()
	n := testnode.Start(t, testnode.Options{})
	alice := n.Register("alice")
	bob := n.Register("bob")
	auth1 := map[string]any{"public_key": "pk1", "signatures": map[string]any{}}
	auth2 := map[string]any{"public_key": "pk2"}
	info := func(version, pk string, count int) func(t *testing.T, res testnode.Response) {
		return func(t *testing.T, res testnode.Response) {
			t.Helper()
			if res.String("version") != version || res.String("algorithm") != backupAlg ||
				field(res.Body, "auth_data", "public_key") != pk || res.Body["count"] != float64(count) {
				t.Errorf("got %s, want version %s, public key %s, count %d", res.Raw, version, pk, count)
			}
			if _, ok := res.Body["etag"].(string); !ok {
				t.Errorf("no string etag in %s", res.Raw)
			}
		}
	}
	versionIs := func(want string) func(t *testing.T, res testnode.Response) {
		return func(t *testing.T, res testnode.Response) {
			t.Helper()
			if res.String("version") != want {
				t.Errorf("version %q, want %q (%s)", res.String("version"), want, res.Raw)
			}
		}
	}
	create := func(auth any) map[string]any { return map[string]any{"algorithm": backupAlg, "auth_data": auth} }
	runCases(t, n, []apiCase{
		{name: "no backup yet", method: "GET", path: backupVer, token: alice.Token, status: 404, errcode: "M_NOT_FOUND"},
		{name: "needs a token", method: "GET", path: backupVer, status: 401, errcode: "M_MISSING_TOKEN"},
		{name: "create needs an algorithm", method: "POST", path: backupVer, token: alice.Token, body: map[string]any{"auth_data": auth1}, status: 400, errcode: "M_MISSING_PARAM"},
		{name: "create needs auth_data", method: "POST", path: backupVer, token: alice.Token, body: map[string]any{"algorithm": backupAlg}, status: 400, errcode: "M_MISSING_PARAM"},
		{name: "auth_data must be an object", method: "POST", path: backupVer, token: alice.Token, body: create([]int{1}), status: 400, errcode: "M_BAD_JSON"},
		{name: "algorithm must be a string", method: "POST", path: backupVer, token: alice.Token, body: map[string]any{"algorithm": 1, "auth_data": auth1}, status: 400, errcode: "M_BAD_JSON"},
		{name: "body must be JSON", method: "POST", path: backupVer, token: alice.Token, body: []byte(`{"algorithm":`), status: 400, errcode: "M_NOT_JSON"},
		{name: "auth_data is bounded", method: "POST", path: backupVer, token: alice.Token, body: create(map[string]any{"x": strings.Repeat("a", 20<<10)}), status: 413, errcode: "M_TOO_LARGE"},
		{name: "body is bounded", method: "POST", path: backupVer, token: alice.Token, body: create(map[string]any{"x": strings.Repeat("a", 70<<10)}), status: 413, errcode: "M_TOO_LARGE"},
		{name: "create", method: "POST", path: backupVer, token: alice.Token, body: create(auth1), status: 200, check: versionIs("1")},
		{name: "current", method: "GET", path: backupVer, token: alice.Token, status: 200, check: info("1", "pk1", 0)},
		{name: "by version", method: "GET", path: backupVer + "/1", token: alice.Token, status: 200, check: info("1", "pk1", 0)},
		{name: "unknown version", method: "GET", path: backupVer + "/2", token: alice.Token, status: 404, errcode: "M_NOT_FOUND"},
		{name: "not a version", method: "GET", path: backupVer + "/abc", token: alice.Token, status: 404, errcode: "M_NOT_FOUND"},
		{name: "another user has none", method: "GET", path: backupVer, token: bob.Token, status: 404, errcode: "M_NOT_FOUND"},
		{name: "nor sees alice's", method: "GET", path: backupVer + "/1", token: bob.Token, status: 404, errcode: "M_NOT_FOUND"},
		{name: "update auth_data", method: "PUT", path: backupVer + "/1", token: alice.Token, body: create(auth2), status: 200, check: rawIs(`{}`)},
		{name: "updated", method: "GET", path: backupVer + "/1", token: alice.Token, status: 200, check: info("1", "pk2", 0)},
		{name: "update with the body's version", method: "PUT", path: backupVer + "/1", token: alice.Token,
			body: map[string]any{"algorithm": backupAlg, "auth_data": auth1, "version": "1"}, status: 200},
		{name: "the body's version must be the path's", method: "PUT", path: backupVer + "/1", token: alice.Token,
			body: map[string]any{"algorithm": backupAlg, "auth_data": auth2, "version": "2"}, status: 400, errcode: "M_INVALID_PARAM"},
		{name: "the algorithm cannot change", method: "PUT", path: backupVer + "/1", token: alice.Token,
			body: map[string]any{"algorithm": "org.example.other", "auth_data": auth2}, status: 400, errcode: "M_INVALID_PARAM"},
		{name: "update needs auth_data", method: "PUT", path: backupVer + "/1", token: alice.Token,
			body: map[string]any{"algorithm": backupAlg}, status: 400, errcode: "M_MISSING_PARAM"},
		{name: "update of an unknown version", method: "PUT", path: backupVer + "/7", token: alice.Token, body: create(auth2), status: 404, errcode: "M_NOT_FOUND"},
		{name: "another user cannot update it", method: "PUT", path: backupVer + "/1", token: bob.Token, body: create(auth2), status: 404, errcode: "M_NOT_FOUND"},
		{name: "nor delete it", method: "DELETE", path: backupVer + "/1", token: bob.Token, status: 404, errcode: "M_NOT_FOUND"},
		{name: "update kept", method: "GET", path: backupVer, token: alice.Token, status: 200, check: info("1", "pk1", 0)},
		{name: "a second version", method: "POST", path: backupVer, token: alice.Token, body: create(auth2), status: 200, check: versionIs("2")},
		{name: "is current", method: "GET", path: backupVer, token: alice.Token, status: 200, check: info("2", "pk2", 0)},
		{name: "the first is still there", method: "GET", path: backupVer + "/1", token: alice.Token, status: 200, check: info("1", "pk1", 0)},
		{name: "delete the second", method: "DELETE", path: backupVer + "/2", token: alice.Token, status: 200, check: rawIs(`{}`)},
		{name: "the first is current again", method: "GET", path: backupVer, token: alice.Token, status: 200, check: info("1", "pk1", 0)},
		{name: "the deleted one is gone", method: "GET", path: backupVer + "/2", token: alice.Token, status: 404, errcode: "M_NOT_FOUND"},
		{name: "deleting it again succeeds", method: "DELETE", path: backupVer + "/2", token: alice.Token, status: 200},
		{name: "deleting one never made does not", method: "DELETE", path: backupVer + "/3", token: alice.Token, status: 404, errcode: "M_NOT_FOUND"},
		{name: "nor one that is no version", method: "DELETE", path: backupVer + "/x", token: alice.Token, status: 404, errcode: "M_NOT_FOUND"},
		{name: "numbers are not reused", method: "POST", path: backupVer, token: alice.Token, body: create(auth2), status: 200, check: versionIs("3")},
		// Three versions kept (1, 3, 4 after this one): a fifth drops the oldest.
		{name: "a fourth", method: "POST", path: backupVer, token: alice.Token, body: create(auth2), status: 200, check: versionIs("4")},
		{name: "1 is kept with three", method: "GET", path: backupVer + "/1", token: alice.Token, status: 200},
		{name: "a fifth", method: "POST", path: backupVer, token: alice.Token, body: create(auth2), status: 200, check: versionIs("5")},
		{name: "the oldest is dropped", method: "GET", path: backupVer + "/1", token: alice.Token, status: 404, errcode: "M_NOT_FOUND"},
		{name: "the others stay", method: "GET", path: backupVer + "/3", token: alice.Token, status: 200, check: info("3", "pk2", 0)},
		{name: "the newest is current", method: "GET", path: backupVer, token: alice.Token, status: 200, check: info("5", "pk2", 0)},
		{name: "bob's first version is his own 1", method: "POST", path: backupVer, token: bob.Token, body: create(auth1), status: 200, check: versionIs("1")},
	})
}

func TestRoomKeys(t *testing.T) {
	t.Parallel()
	n := testnode.Start(t, testnode.Options{})
	alice := n.Register("alice")
	bob := n.Register("bob")
	room1, room2 := "!one:example.org", "!two:example.org"
	create := map[string]any{"algorithm": backupAlg, "auth_data": map[string]any{"public_key": "pk"}}
	expect(t, n.Do("POST", backupVer, alice.Token, create), 200, "")

	var etag string // the etag of the last answer that changed keys
	changed := func(count int) func(t *testing.T, res testnode.Response) {
		return func(t *testing.T, res testnode.Response) {
			t.Helper()
			e := countIs(t, res, count)
			if e == etag {
				t.Errorf("etag %q did not change", e)
			}
			etag = e
		}
	}
	unchanged := func(count int) func(t *testing.T, res testnode.Response) {
		return func(t *testing.T, res testnode.Response) {
			t.Helper()
			if e := countIs(t, res, count); e != etag {
				t.Errorf("etag %q changed from %q though no key did", e, etag)
			}
		}
	}
	stored := func(mark string) func(t *testing.T, res testnode.Response) {
		return func(t *testing.T, res testnode.Response) {
			t.Helper()
			if got := field(res.Body, "session_data", "ciphertext"); got != mark {
				t.Errorf("stored key %s, want the one marked %s", res.Raw, mark)
			}
		}
	}
	versionEtag := func(count int) func(t *testing.T, res testnode.Response) {
		return func(t *testing.T, res testnode.Response) {
			t.Helper()
			if e := countIs(t, res, count); e != etag {
				t.Errorf("the version's etag %q is not the last upload's %q", e, etag)
			}
		}
	}
	wrongVersion := func(current string) func(t *testing.T, res testnode.Response) {
		return func(t *testing.T, res testnode.Response) {
			t.Helper()
			if res.String("current_version") != current {
				t.Errorf("current_version %q, want %q (%s)", res.String("current_version"), current, res.Raw)
			}
		}
	}
	many := map[string]any{}
	for i := range 1001 {
		many[fmt.Sprintf("s%d", i)] = backupKey(0, 0, false, "x")
	}
	k := backupKey(5, 1, false, "first")
	runCases(t, n, []apiCase{
		{name: "put needs the version", method: "PUT", path: roomKeys + "/" + esc(room1) + "/s1", token: alice.Token, body: k, status: 400, errcode: "M_MISSING_PARAM"},
		{name: "get needs the version", method: "GET", path: roomKeys, token: alice.Token, status: 400, errcode: "M_MISSING_PARAM"},
		{name: "delete needs the version", method: "DELETE", path: roomKeys, token: alice.Token, status: 400, errcode: "M_MISSING_PARAM"},
		{name: "put into another version", method: "PUT", path: keysPath("9", room1, "s1"), token: alice.Token, body: k, status: 403, errcode: "M_WRONG_ROOM_KEYS_VERSION", check: wrongVersion("1")},
		{name: "put into no version at all", method: "PUT", path: keysPath("x", room1, "s1"), token: alice.Token, body: k, status: 403, errcode: "M_WRONG_ROOM_KEYS_VERSION", check: wrongVersion("1")},
		{name: "put without a backup", method: "PUT", path: keysPath("1", room1, "s1"), token: bob.Token, body: k, status: 404, errcode: "M_NOT_FOUND"},
		{name: "empty backup", method: "GET", path: keysPath("1"), token: alice.Token, status: 200, check: rawIs(`{"rooms":{}}`)},
		{name: "empty room", method: "GET", path: keysPath("1", room1), token: alice.Token, status: 200, check: rawIs(`{"sessions":{}}`)},
		{name: "no such session", method: "GET", path: keysPath("1", room1, "s1"), token: alice.Token, status: 404, errcode: "M_NOT_FOUND"},
		{name: "unknown version", method: "GET", path: keysPath("2"), token: alice.Token, status: 404, errcode: "M_NOT_FOUND"},
		{name: "not bob's backup", method: "GET", path: keysPath("1"), token: bob.Token, status: 404, errcode: "M_NOT_FOUND"},

		{name: "put one session", method: "PUT", path: keysPath("1", room1, "s1"), token: alice.Token, body: k, status: 200, check: changed(1)},
		{name: "get it", method: "GET", path: keysPath("1", room1, "s1"), token: alice.Token, status: 200,
			check: rawIs(`{"first_message_index":5,"forwarded_count":1,"is_verified":false,"session_data":{"ciphertext":"first","ephemeral":"e","mac":"m"}}`)},
		{name: "the version counts it", method: "GET", path: backupVer, token: alice.Token, status: 200, check: versionEtag(1)},
		{name: "the same again changes nothing", method: "PUT", path: keysPath("1", room1, "s1"), token: alice.Token, body: k, status: 200, check: unchanged(1)},
		{name: "a worse key is not kept", method: "PUT", path: keysPath("1", room1, "s1"), token: alice.Token, body: backupKey(6, 0, false, "worse"), status: 200, check: unchanged(1)},
		{name: "still the first", method: "GET", path: keysPath("1", room1, "s1"), token: alice.Token, status: 200, check: stored("first")},
		{name: "a better key replaces it", method: "PUT", path: keysPath("1", room1, "s1"), token: alice.Token, body: backupKey(2, 3, false, "better"), status: 200, check: changed(1)},
		{name: "replaced", method: "GET", path: keysPath("1", room1, "s1"), token: alice.Token, status: 200, check: stored("better")},

		{name: "put a room's sessions", method: "PUT", path: keysPath("1", room1), token: alice.Token,
			body: map[string]any{"sessions": map[string]any{"s2": backupKey(0, 0, true, "r1s2"), "s3": backupKey(0, 0, true, "r1s3")}}, status: 200, check: changed(3)},
		{name: "put several rooms", method: "PUT", path: keysPath("1"), token: alice.Token,
			body: map[string]any{"rooms": map[string]any{
				room1: map[string]any{"sessions": map[string]any{"s3": backupKey(0, 0, false, "unverified")}},
				room2: map[string]any{"sessions": map[string]any{"s1": backupKey(1, 0, true, "r2s1")}},
			}}, status: 200, check: changed(4)},
		{name: "a room", method: "GET", path: keysPath("1", room2), token: alice.Token, status: 200,
			check: rawIs(`{"sessions":{"s1":{"first_message_index":1,"forwarded_count":0,"is_verified":true,"session_data":{"ciphertext":"r2s1","ephemeral":"e","mac":"m"}}}}`)},
		{name: "the verified key was kept", method: "GET", path: keysPath("1", room1, "s3"), token: alice.Token, status: 200, check: stored("r1s3")},
		{name: "everything", method: "GET", path: keysPath("1"), token: alice.Token, status: 200, check: func(t *testing.T, res testnode.Response) {
			want := map[string][]string{room1: {"s1", "s2", "s3"}, room2: {"s1"}}
			for room, sessions := range want {
				for _, s := range sessions {
					if field(res.Body, "rooms", room, "sessions", s, "session_data") == nil {
						t.Errorf("no %s %s in %s", room, s, res.Raw)
					}
				}
			}
			var all struct {
				Rooms map[string]struct {
					Sessions map[string]json.RawMessage `json:"sessions"`
				} `json:"rooms"`
			}
			if err := json.Unmarshal(res.Raw, &all); err != nil || len(all.Rooms) != 2 || len(all.Rooms[room1].Sessions) != 3 {
				t.Errorf("want 2 rooms, 3 sessions in the first: %s (%v)", res.Raw, err)
			}
		}},

		{name: "room ID must be one", method: "PUT", path: keysPath("1", "#alias:example.org", "s1"), token: alice.Token, body: k, status: 400, errcode: "M_INVALID_PARAM"},
		{name: "room ID must be one on get", method: "GET", path: keysPath("1", "nope"), token: alice.Token, status: 400, errcode: "M_INVALID_PARAM"},
		{name: "room ID in the body must be one", method: "PUT", path: keysPath("1"), token: alice.Token,
			body: map[string]any{"rooms": map[string]any{"nope": map[string]any{"sessions": map[string]any{}}}}, status: 400, errcode: "M_INVALID_PARAM"},
		{name: "key fields are required", method: "PUT", path: keysPath("1", room1, "s9"), token: alice.Token,
			body: map[string]any{"first_message_index": 0, "forwarded_count": 0, "session_data": map[string]any{}}, status: 400, errcode: "M_BAD_JSON"},
		{name: "session_data must be an object", method: "PUT", path: keysPath("1", room1, "s9"), token: alice.Token,
			body: map[string]any{"first_message_index": 0, "forwarded_count": 0, "is_verified": true, "session_data": "x"}, status: 400, errcode: "M_BAD_JSON"},
		{name: "indexes are whole numbers", method: "PUT", path: keysPath("1", room1, "s9"), token: alice.Token,
			body: map[string]any{"first_message_index": 0.5, "forwarded_count": 0, "is_verified": true, "session_data": map[string]any{}}, status: 400, errcode: "M_BAD_JSON"},
		{name: "and not negative", method: "PUT", path: keysPath("1", room1, "s9"), token: alice.Token, body: backupKey(-1, 0, true, "x"), status: 400, errcode: "M_BAD_JSON"},
		{name: "sessions must be an object", method: "PUT", path: keysPath("1", room1), token: alice.Token, body: map[string]any{"sessions": []int{}}, status: 400, errcode: "M_BAD_JSON"},
		{name: "sessions are required", method: "PUT", path: keysPath("1", room1), token: alice.Token, body: map[string]any{}, status: 400, errcode: "M_BAD_JSON"},
		{name: "rooms are required", method: "PUT", path: keysPath("1"), token: alice.Token, body: map[string]any{}, status: 400, errcode: "M_BAD_JSON"},
		{name: "a room needs sessions", method: "PUT", path: keysPath("1"), token: alice.Token, body: map[string]any{"rooms": map[string]any{room1: map[string]any{}}}, status: 400, errcode: "M_BAD_JSON"},
		{name: "a key is bounded", method: "PUT", path: keysPath("1", room1, "s9"), token: alice.Token,
			body: backupKey(0, 0, true, strings.Repeat("c", 17<<10)), status: 413, errcode: "M_TOO_LARGE"},
		{name: "keys per request are bounded", method: "PUT", path: keysPath("1", room1), token: alice.Token, body: map[string]any{"sessions": many}, status: 413, errcode: "M_TOO_LARGE"},
		{name: "the body is bounded", method: "PUT", path: keysPath("1", room1, "s9"), token: alice.Token,
			body: backupKey(0, 0, true, strings.Repeat("c", 1<<20)), status: 413, errcode: "M_TOO_LARGE"},
		{name: "nothing refused was stored", method: "GET", path: backupVer, token: alice.Token, status: 200, check: versionEtag(4)},

		// A new version: the old one is read-only but still readable.
		{name: "a new version", method: "POST", path: backupVer, token: alice.Token, body: create, status: 200},
		{name: "the old version takes no keys", method: "PUT", path: keysPath("1", room1, "s9"), token: alice.Token, body: k, status: 403,
			errcode: "M_WRONG_ROOM_KEYS_VERSION", check: wrongVersion("2")},
		{name: "the old version's keys are readable", method: "GET", path: keysPath("1", room1, "s1"), token: alice.Token, status: 200, check: stored("better")},
		{name: "the new version is empty", method: "GET", path: keysPath("2", room1), token: alice.Token, status: 200, check: rawIs(`{"sessions":{}}`)},

		{name: "delete a session", method: "DELETE", path: keysPath("1", room1, "s1"), token: alice.Token, status: 200, check: changed(3)},
		{name: "it is gone", method: "GET", path: keysPath("1", room1, "s1"), token: alice.Token, status: 404, errcode: "M_NOT_FOUND"},
		{name: "deleting it again changes nothing", method: "DELETE", path: keysPath("1", room1, "s1"), token: alice.Token, status: 200, check: unchanged(3)},
		{name: "delete a room", method: "DELETE", path: keysPath("1", room1), token: alice.Token, status: 200, check: changed(1)},
		{name: "the room is empty", method: "GET", path: keysPath("1", room1), token: alice.Token, status: 200, check: rawIs(`{"sessions":{}}`)},
		{name: "the other room is not", method: "GET", path: keysPath("1", room2, "s1"), token: alice.Token, status: 200, check: stored("r2s1")},
		{name: "delete from an unknown version", method: "DELETE", path: keysPath("7"), token: alice.Token, status: 404, errcode: "M_NOT_FOUND"},
		{name: "delete all", method: "DELETE", path: keysPath("1"), token: alice.Token, status: 200, check: changed(0)},
		{name: "all gone", method: "GET", path: keysPath("1"), token: alice.Token, status: 200, check: rawIs(`{"rooms":{}}`)},

		{name: "put into the new version", method: "PUT", path: keysPath("2", room1, "s1"), token: alice.Token, body: k, status: 200},
		{name: "delete the new version", method: "DELETE", path: backupVer + "/2", token: alice.Token, status: 200},
		{name: "its keys are gone with it", method: "GET", path: keysPath("2", room1, "s1"), token: alice.Token, status: 404, errcode: "M_NOT_FOUND"},
		{name: "the old one is current again", method: "PUT", path: keysPath("1", room1, "s1"), token: alice.Token, body: k, status: 200, check: changed(1)},

		// Megolm session IDs are base64: / and + in a path segment.
		{name: "a session ID with / and +", method: "PUT", path: keysPath("1", room2, "ab/c+d"), token: alice.Token, body: backupKey(0, 0, true, "slash"), status: 200, check: changed(2)},
		{name: "is one session", method: "GET", path: keysPath("1", room2, "ab/c+d"), token: alice.Token, status: 200, check: stored("slash")},
		{name: "listed under its ID", method: "GET", path: keysPath("1", room2), token: alice.Token, status: 200, check: func(t *testing.T, res testnode.Response) {
			if field(res.Body, "sessions", "ab/c+d", "session_data", "ciphertext") != "slash" {
				t.Errorf("no session ab/c+d in %s", res.Raw)
			}
		}},
		{name: "deleted by its ID", method: "DELETE", path: keysPath("1", room2, "ab/c+d"), token: alice.Token, status: 200, check: changed(1)},
	})
}

// TestRoomKeysReplacement is the spec's rule for two keys of one session:
// the verified one, then the lower first_message_index, then the lower
// forwarded_count; a key equal on all three keeps the stored one.
func TestRoomKeysReplacement(t *testing.T) {
	t.Parallel()
	n := testnode.Start(t, testnode.Options{})
	alice := n.Register("alice")
	expect(t, n.Do("POST", backupVer, alice.Token, map[string]any{"algorithm": backupAlg, "auth_data": map[string]any{}}), 200, "")
	type meta struct {
		fmi, fc  int
		verified bool
	}
	for i, c := range []struct {
		name           string
		stored, upload meta
		replaced       bool
	}{
		{"verified beats unverified, whatever the index", meta{0, 0, false}, meta{9, 9, true}, true},
		{"unverified never beats verified", meta{9, 9, true}, meta{0, 0, false}, false},
		{"lower first_message_index wins", meta{5, 0, true}, meta{4, 9, true}, true},
		{"higher first_message_index loses", meta{4, 9, false}, meta{5, 0, false}, false},
		{"then lower forwarded_count wins", meta{3, 2, false}, meta{3, 1, false}, true},
		{"higher forwarded_count loses", meta{3, 1, true}, meta{3, 2, true}, false},
		{"an equal key keeps the stored one", meta{3, 1, true}, meta{3, 1, true}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := keysPath("1", "!r:example.org", fmt.Sprintf("s%d", i))
			first := n.Do("PUT", p, alice.Token, backupKey(c.stored.fmi, c.stored.fc, c.stored.verified, "stored"))
			expect(t, first, 200, "")
			second := n.Do("PUT", p, alice.Token, backupKey(c.upload.fmi, c.upload.fc, c.upload.verified, "upload"))
			expect(t, second, 200, "")
			want := "stored"
			if c.replaced {
				want = "upload"
			}
			res := n.Do("GET", p, alice.Token, nil)
			expect(t, res, 200, "")
			if got := field(res.Body, "session_data", "ciphertext"); got != want {
				t.Errorf("kept %v, want %s", got, want)
			}
			if (first.String("etag") != second.String("etag")) != c.replaced {
				t.Errorf("etag %s then %s: it changes exactly when a key is replaced", first.String("etag"), second.String("etag"))
			}
			if first.Body["count"] != second.Body["count"] {
				t.Errorf("count %v then %v: a second key of a session is not counted", first.Body["count"], second.Body["count"])
			}
		})
	}
}
