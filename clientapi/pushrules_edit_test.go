package clientapi_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/edgenode/edgenode/internal/testnode"
)

// ruleIDs lists the rule IDs of one kind of a GET /pushrules/global/ body.
func ruleIDs(global any, kind string) []string {
	var ids []string
	list, _ := field(global, kind).([]any)
	for _, r := range list {
		id, _ := field(r, "rule_id").(string)
		ids = append(ids, id)
	}
	return ids
}

// TestPushRulesEdit walks the push rules API: creating, placing, reading,
// enabling, changing and deleting rules, with the spec's errors, in order
// (each case sees the rules the previous ones left).
func TestPushRulesEdit(t *testing.T) {
	t.Parallel()
	n := testnode.Start(t, testnode.Options{})
	alice := n.Register("alice")
	g := v3 + "/pushrules/global/"
	notify := []any{"notify"}
	wantOrder := func(kind string, want ...string) func(*testing.T, testnode.Response) {
		return func(t *testing.T, _ testnode.Response) {
			res := n.Do("GET", g, alice.Token, nil)
			got := ruleIDs(res.Body, kind)
			var own []string
			for _, id := range got {
				if !strings.HasPrefix(id, ".") || id == ".m.rule.master" {
					own = append(own, id)
				}
			}
			if fmt.Sprint(own) != fmt.Sprint(want) {
				t.Errorf("%s rules %v, want %v (all: %v)", kind, own, want, got)
			}
		}
	}
	runCases(t, n, []apiCase{
		{name: "create override", method: "PUT", path: g + "override/a", token: alice.Token, status: 200,
			body: map[string]any{"actions": notify, "conditions": []any{map[string]any{"kind": "event_match", "key": "type", "pattern": "m.x"}}}},
		{name: "new rules come first", method: "PUT", path: g + "override/b", token: alice.Token, status: 200,
			body: map[string]any{"actions": notify}, check: wantOrder("override", ".m.rule.master", "b", "a")},
		{name: "after", method: "PUT", path: g + "override/c?after=a", token: alice.Token, status: 200,
			body: map[string]any{"actions": notify}, check: wantOrder("override", ".m.rule.master", "b", "a", "c")},
		{name: "before", method: "PUT", path: g + "override/d?before=a", token: alice.Token, status: 200,
			body: map[string]any{"actions": notify}, check: wantOrder("override", ".m.rule.master", "b", "d", "a", "c")},
		{name: "before wins over after", method: "PUT", path: g + "override/e?before=b&after=c", token: alice.Token, status: 200,
			body: map[string]any{"actions": notify}, check: wantOrder("override", ".m.rule.master", "e", "b", "d", "a", "c")},
		{name: "update keeps place", method: "PUT", path: g + "override/d", token: alice.Token, status: 200,
			body: map[string]any{"actions": []any{}}, check: wantOrder("override", ".m.rule.master", "e", "b", "d", "a", "c")},
		{name: "get one", method: "GET", path: g + "override/a", token: alice.Token, status: 200,
			check: func(t *testing.T, res testnode.Response) {
				if res.Body["rule_id"] != "a" || res.Body["default"] != false || res.Body["enabled"] != true ||
					field(res.Body, "conditions") == nil || fmt.Sprint(res.Body["actions"]) != "[notify]" {
					t.Errorf("rule %s", res.Raw)
				}
			}},
		{name: "content rule", method: "PUT", path: g + "content/cake", token: alice.Token, status: 200,
			body: map[string]any{"actions": notify, "pattern": "cake*lie"}},
		{name: "content rule shown with its pattern", method: "GET", path: g + "content/cake", token: alice.Token, status: 200,
			check: func(t *testing.T, res testnode.Response) {
				if res.Body["pattern"] != "cake*lie" || res.Body["conditions"] != nil {
					t.Errorf("rule %s", res.Raw)
				}
			}},
		{name: "room rule", method: "PUT", path: g + "room/" + esc("!r:hs"), token: alice.Token, status: 200,
			body: map[string]any{"actions": []any{}}},
		{name: "room rule's condition", method: "GET", path: g + "room/" + esc("!r:hs"), token: alice.Token, status: 200,
			check: func(t *testing.T, res testnode.Response) {
				c, _ := field(res.Body, "conditions").([]any)
				if len(c) != 1 || field(c[0], "key") != "room_id" || field(c[0], "pattern") != "!r:hs" {
					t.Errorf("rule %s", res.Raw)
				}
			}},
		{name: "sender rule", method: "PUT", path: g + "sender/" + esc("@bob:hs"), token: alice.Token, status: 200,
			body: map[string]any{"actions": notify}},
		{name: "disable a default", method: "PUT", path: g + "underride/.m.rule.message/enabled", token: alice.Token, status: 200,
			body: map[string]any{"enabled": false}},
		{name: "read enabled", method: "GET", path: g + "underride/.m.rule.message/enabled", token: alice.Token, status: 200,
			check: func(t *testing.T, res testnode.Response) {
				if res.Body["enabled"] != false {
					t.Errorf("enabled %s", res.Raw)
				}
			}},
		{name: "change a default's actions", method: "PUT", path: g + "override/.m.rule.tombstone/actions", token: alice.Token, status: 200,
			body: map[string]any{"actions": notify}},
		{name: "read actions", method: "GET", path: g + "override/.m.rule.tombstone/actions", token: alice.Token, status: 200,
			check: func(t *testing.T, res testnode.Response) {
				if fmt.Sprint(res.Body["actions"]) != "[notify]" {
					t.Errorf("actions %s", res.Raw)
				}
			}},
		{name: "defaults keep default true", method: "GET", path: g + "override/.m.rule.tombstone", token: alice.Token, status: 200,
			check: func(t *testing.T, res testnode.Response) {
				if res.Body["default"] != true {
					t.Errorf("rule %s", res.Raw)
				}
			}},
		{name: "delete", method: "DELETE", path: g + "override/b", token: alice.Token, status: 200,
			check: wantOrder("override", ".m.rule.master", "e", "d", "a", "c")},

		// Errors.
		{name: "get missing", method: "GET", path: g + "override/nope", token: alice.Token, status: 404, errcode: "M_NOT_FOUND"},
		{name: "get wrong kind", method: "GET", path: g + "underride/a", token: alice.Token, status: 404, errcode: "M_NOT_FOUND"},
		{name: "unknown kind", method: "GET", path: g + "middle/a", token: alice.Token, status: 400, errcode: "M_INVALID_PARAM"},
		{name: "put unknown kind", method: "PUT", path: g + "middle/a", token: alice.Token, status: 400, errcode: "M_INVALID_PARAM",
			body: map[string]any{"actions": notify}},
		{name: "delete missing", method: "DELETE", path: g + "override/nope", token: alice.Token, status: 404, errcode: "M_NOT_FOUND"},
		{name: "delete deleted", method: "DELETE", path: g + "override/b", token: alice.Token, status: 404, errcode: "M_NOT_FOUND"},
		{name: "delete a default", method: "DELETE", path: g + "override/.m.rule.tombstone", token: alice.Token, status: 400, errcode: "M_INVALID_PARAM"},
		{name: "create with a dot", method: "PUT", path: g + "override/.mine", token: alice.Token, status: 400, errcode: "M_INVALID_PARAM",
			body: map[string]any{"actions": notify}},
		{name: "replace a default", method: "PUT", path: g + "override/.m.rule.tombstone", token: alice.Token, status: 400, errcode: "M_INVALID_PARAM",
			body: map[string]any{"actions": notify}},
		{name: "slash in the ID", method: "PUT", path: g + "override/a%2Fb", token: alice.Token, status: 400, errcode: "M_INVALID_PARAM",
			body: map[string]any{"actions": notify}},
		{name: "backslash in the ID", method: "PUT", path: g + "override/a%5Cb", token: alice.Token, status: 400, errcode: "M_INVALID_PARAM",
			body: map[string]any{"actions": notify}},
		{name: "ID too long", method: "PUT", path: g + "override/" + strings.Repeat("x", 300), token: alice.Token, status: 400, errcode: "M_INVALID_PARAM",
			body: map[string]any{"actions": notify}},
		{name: "before a missing rule", method: "PUT", path: g + "override/f?before=nope", token: alice.Token, status: 400, errcode: "M_UNKNOWN",
			body: map[string]any{"actions": notify}},
		{name: "after a default rule", method: "PUT", path: g + "override/f?after=.m.rule.tombstone", token: alice.Token, status: 400, errcode: "M_UNKNOWN",
			body: map[string]any{"actions": notify}},
		{name: "unknown action", method: "PUT", path: g + "override/f", token: alice.Token, status: 400, errcode: "M_UNKNOWN",
			body: map[string]any{"actions": []any{"explode"}}},
		{name: "no actions", method: "PUT", path: g + "override/f", token: alice.Token, status: 400, errcode: "M_BAD_JSON",
			body: map[string]any{"conditions": []any{}}},
		{name: "content rule without pattern", method: "PUT", path: g + "content/f", token: alice.Token, status: 400, errcode: "M_BAD_JSON",
			body: map[string]any{"actions": notify}},
		{name: "condition without kind", method: "PUT", path: g + "override/f", token: alice.Token, status: 400, errcode: "M_BAD_JSON",
			body: map[string]any{"actions": notify, "conditions": []any{map[string]any{"key": "type"}}}},
		{name: "event_match without pattern", method: "PUT", path: g + "override/f", token: alice.Token, status: 400, errcode: "M_BAD_JSON",
			body: map[string]any{"actions": notify, "conditions": []any{map[string]any{"kind": "event_match", "key": "type"}}}},
		{name: "compound property value", method: "PUT", path: g + "override/f", token: alice.Token, status: 400, errcode: "M_BAD_JSON",
			body: map[string]any{"actions": notify, "conditions": []any{map[string]any{"kind": "event_property_is", "key": "type", "value": []any{1}}}}},
		{name: "bad member count", method: "PUT", path: g + "override/f", token: alice.Token, status: 400, errcode: "M_BAD_JSON",
			body: map[string]any{"actions": notify, "conditions": []any{map[string]any{"kind": "room_member_count", "is": "lots"}}}},
		{name: "not JSON", method: "PUT", path: g + "override/f", token: alice.Token, status: 400, errcode: "M_NOT_JSON",
			body: []byte("actions")},
		{name: "rule too large", method: "PUT", path: g + "override/f", token: alice.Token, status: 413, errcode: "M_TOO_LARGE",
			body: map[string]any{"actions": notify, "conditions": []any{map[string]any{"kind": "event_match", "key": "type", "pattern": strings.Repeat("x", 3000)}}}},
		{name: "enabled of a missing rule", method: "PUT", path: g + "override/nope/enabled", token: alice.Token, status: 404, errcode: "M_NOT_FOUND",
			body: map[string]any{"enabled": true}},
		{name: "enabled without a boolean", method: "PUT", path: g + "override/a/enabled", token: alice.Token, status: 400, errcode: "M_BAD_JSON",
			body: map[string]any{"enabled": "yes"}},
		{name: "enabled missing", method: "PUT", path: g + "override/a/enabled", token: alice.Token, status: 400, errcode: "M_BAD_JSON",
			body: map[string]any{}},
		{name: "get enabled of a missing rule", method: "GET", path: g + "override/nope/enabled", token: alice.Token, status: 404, errcode: "M_NOT_FOUND"},
		{name: "actions of a missing rule", method: "PUT", path: g + "override/nope/actions", token: alice.Token, status: 404, errcode: "M_NOT_FOUND",
			body: map[string]any{"actions": notify}},
		{name: "get actions of a missing rule", method: "GET", path: g + "override/nope/actions", token: alice.Token, status: 404, errcode: "M_NOT_FOUND"},
		{name: "actions missing", method: "PUT", path: g + "override/a/actions", token: alice.Token, status: 400, errcode: "M_BAD_JSON",
			body: map[string]any{}},
		{name: "bad actions", method: "PUT", path: g + "override/a/actions", token: alice.Token, status: 400, errcode: "M_UNKNOWN",
			body: map[string]any{"actions": []any{map[string]any{"value": 1}}}},
		{name: "needs a token", method: "PUT", path: g + "override/a", status: 401, errcode: "M_MISSING_TOKEN",
			body: map[string]any{"actions": notify}},
	})

	// The rules are the user's m.push_rules account data.
	res := n.Do("GET", v3+"/user/"+esc(alice.UserID)+"/account_data/m.push_rules", alice.Token, nil)
	expect(t, res, http.StatusOK, "")
	if ids := ruleIDs(field(res.Body, "global"), "override"); len(ids) < 5 || ids[1] != "e" {
		t.Errorf("account data override rules %v", ids)
	}
}

// TestPushRulesLimit: a user's own rules are bounded.
func TestPushRulesLimit(t *testing.T) {
	t.Parallel()
	n := testnode.Start(t, testnode.Options{})
	alice := n.Register("alice")
	for i := range 100 {
		res := n.Do("PUT", fmt.Sprintf("%s/pushrules/global/sender/%s", v3, esc(fmt.Sprintf("@u%d:hs", i))), alice.Token,
			map[string]any{"actions": []any{}})
		expect(t, res, http.StatusOK, "")
	}
	res := n.Do("PUT", v3+"/pushrules/global/sender/"+esc("@one-too-many:hs"), alice.Token, map[string]any{"actions": []any{}})
	expect(t, res, http.StatusRequestEntityTooLarge, "M_TOO_LARGE")
	// Replacing one is still fine.
	res = n.Do("PUT", v3+"/pushrules/global/sender/"+esc("@u1:hs"), alice.Token, map[string]any{"actions": []any{"notify"}})
	expect(t, res, http.StatusOK, "")
}
