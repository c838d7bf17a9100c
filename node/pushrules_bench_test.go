package node

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/edgenode/edgenode/node/core"
	"github.com/edgenode/edgenode/node/push"
	"github.com/matrix-org/gomatrixserverlib/spec"
)

// BenchmarkSendOneRoomPushRules: sequential sends into a room with a
// second local member, whose push rules decide each event's notification
// (unread counts and the notifications index in the commit): the spec's
// defaults, and the defaults plus 25 rules of their own (20 keywords, 5
// muted rooms) that the event passes through before .m.rule.message.
func BenchmarkSendOneRoomPushRules(b *testing.B) {
	for _, rules := range []string{"defaults", "userrules"} {
		for _, mode := range syncModes {
			b.Run(rules+"/"+mode.name, func(b *testing.B) {
				ctx := context.Background()
				n := benchNode(b, mode.noSync)
				alice, bob := session(n, "alice"), session(n, "bob")
				roomID, err := n.CreateRoom(ctx, core.CreateRoomRequest{Creator: alice.UserID, Preset: core.PresetPublicChat})
				if err != nil {
					b.Fatal(err)
				}
				if _, err := n.ChangeMembership(ctx, core.MembershipChange{Sender: bob.UserID, RoomID: roomID, Target: bob.UserID, Membership: spec.Join}); err != nil {
					b.Fatal(err)
				}
				if rules == "userrules" {
					for i := range 20 {
						pattern := fmt.Sprintf("keyword%d", i)
						if err := n.SetPushRule(ctx, bob.UserID, push.KindContent, pattern, "", "", push.RuleBody{
							Pattern: &pattern, Actions: []json.RawMessage{json.RawMessage(`"notify"`)}}); err != nil {
							b.Fatal(err)
						}
					}
					for i := range 5 {
						if err := n.SetPushRule(ctx, bob.UserID, push.KindRoom, fmt.Sprintf("!muted%d:hs", i), "", "", push.RuleBody{
							Actions: []json.RawMessage{}}); err != nil {
							b.Fatal(err)
						}
					}
				}
				benchSends(b, n, alice, roomID)
				if notify, _, err := n.UnreadCounts(ctx, bob.UserID, roomID); err != nil || notify == 0 {
					b.Fatalf("bob's count %d, %v", notify, err)
				}
			})
		}
	}
}
