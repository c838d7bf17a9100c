package clientapi_test

import (
	"testing"

	"github.com/edgenode/edgenode/internal/testnode"
)

func TestPushRules(t *testing.T) {
	t.Parallel()
	n := testnode.Start(t, testnode.Options{})
	alice := n.Register("alice")
	wantIDs := map[string][]string{
		"override": {".m.rule.master", ".m.rule.suppress_notices", ".m.rule.invite_for_me", ".m.rule.member_event",
			".m.rule.is_user_mention", ".m.rule.contains_display_name", ".m.rule.is_room_mention", ".m.rule.roomnotif",
			".m.rule.tombstone", ".m.rule.reaction", ".m.rule.room.server_acl", ".m.rule.poll_response", ".m.rule.suppress_edits"},
		"content": {".m.rule.contains_user_name"},
		"room":    {},
		"sender":  {},
		"underride": {".m.rule.call", ".m.rule.encrypted_room_one_to_one", ".m.rule.room_one_to_one", ".m.rule.message", ".m.rule.encrypted",
			".m.rule.poll_start_one_to_one", ".m.rule.poll_start", ".m.rule.poll_end_one_to_one", ".m.rule.poll_end"},
	}
	checkRuleset := func(t *testing.T, global any) {
		for kind, ids := range wantIDs {
			rules, ok := field(global, kind).([]any)
			if !ok || len(rules) != len(ids) {
				t.Fatalf("%s: %v", kind, field(global, kind))
			}
			for i, r := range rules {
				if field(r, "rule_id") != ids[i] || field(r, "default") != true {
					t.Errorf("%s[%d] = %v, want %s", kind, i, r, ids[i])
				}
				if _, ok := field(r, "actions").([]any); !ok {
					t.Errorf("%s: actions not a list", ids[i])
				}
				if enabled := field(r, "enabled"); enabled != (ids[i] != ".m.rule.master") {
					t.Errorf("%s enabled=%v", ids[i], enabled)
				}
			}
		}
		override := field(global, "override").([]any)
		// The user's own ID and localpart are filled in.
		if got := field(field(override[2], "conditions").([]any)[2], "pattern"); got != alice.UserID {
			t.Errorf("invite_for_me state_key pattern %v", got)
		}
		if got := field(field(override[4], "conditions").([]any)[0], "value"); got != alice.UserID {
			t.Errorf("is_user_mention value %v", got)
		}
		if got := field(field(global, "content").([]any)[0], "pattern"); got != "alice" {
			t.Errorf("contains_user_name pattern %v", got)
		}
		// Empty patterns and false-y values are real values, not omitted.
		if got, ok := field(field(override[8], "conditions").([]any)[1], "pattern").(string); !ok || got != "" {
			t.Errorf("tombstone state_key pattern %v", got)
		}
		if conds, ok := field(override[0], "conditions").([]any); !ok || len(conds) != 0 {
			t.Errorf("master conditions %v", field(override[0], "conditions"))
		}
	}
	runCases(t, n, []apiCase{
		{name: "all", method: "GET", path: v3 + "/pushrules/", token: alice.Token, status: 200,
			check: func(t *testing.T, res testnode.Response) { checkRuleset(t, res.Body["global"]) }},
		{name: "global", method: "GET", path: v3 + "/pushrules/global/", token: alice.Token, status: 200,
			check: func(t *testing.T, res testnode.Response) { checkRuleset(t, res.Body) }},
		{name: "needs a token", method: "GET", path: v3 + "/pushrules/", status: 401, errcode: "M_MISSING_TOKEN"},
	})
}
