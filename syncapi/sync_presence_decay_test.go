package syncapi_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/edgenode/edgenode/app"
	"github.com/edgenode/edgenode/internal/testnet"
	"github.com/edgenode/edgenode/internal/testnode"
	"github.com/edgenode/edgenode/node"
	"github.com/edgenode/edgenode/node/core"
)

// TestSyncPresenceDecays: over HTTP, a user whose long-poll /sync is open
// stays present past the 30-second sync timeout; once it has returned and
// no other follows, a room-mate's /sync reports them offline. The node's
// clock is moved instead of waiting; the decay that fell due is applied
// when the next sync starts, as after a device's sleep.
func TestSyncPresenceDecays(t *testing.T) {
	clock := testnet.NewClock(time.UnixMilli(1_700_000_000_000))
	tn := testnode.Start(t, testnode.Options{Configure: func(c *app.Config) { c.Node.Clock = clock.Now }})
	e := &env{t: t, tn: tn, n: tn.App.Node}
	alice, bob, carol := e.user("alice"), e.user("bob"), e.user("carol")
	roomID := e.room(alice, core.PresetPublicChat)
	e.join(bob, roomID)
	// bob's syncs leave his presence alone, so they are no news to alice.
	bobTok := e.sync(bob, vals("set_presence", "offline")).NextBatch
	aliceTok := e.sync(alice, nil).NextBatch // alice is online
	seen := func(name, want string) {
		t.Helper()
		b := e.sync(bob, vals("since", bobTok, "timeout", "0", "set_presence", "offline"))
		bobTok = b.NextBatch
		p, ok := presenceOf(t, b, alice.UserID)
		switch {
		case want == "" && ok:
			t.Errorf("%s: bob's sync reports alice %s, want nothing new", name, p.Presence)
		case want != "" && (!ok || p.Presence != want):
			t.Errorf("%s: bob's sync reports alice %+v (%v), want %s", name, p, ok, want)
		}
	}
	seen("alice synced", node.PresenceOnline)

	// alice's client long-polls, marking her unavailable; bob's long-poll
	// returning with that change shows hers is open. Her filter leaves
	// presence out, so the change does not end her long-poll.
	filter, _ := json.Marshal(map[string]any{"presence": map[string]any{"types": []string{}}})
	bobWaits := make(chan syncBody, 1)
	go func() {
		bobWaits <- e.sync(bob, vals("since", bobTok, "timeout", "60000", "set_presence", "offline"))
	}()
	aliceDone := make(chan testnode.Response, 1)
	go func() {
		aliceDone <- e.get(alice.AccessToken, "/_matrix/client/v3/sync",
			vals("since", aliceTok, "timeout", "60000", "set_presence", "unavailable", "filter", string(filter)))
	}()
	b := <-bobWaits
	bobTok = b.NextBatch
	if p, ok := presenceOf(t, b, alice.UserID); !ok || p.Presence != node.PresenceUnavailable {
		t.Fatalf("bob's long-poll: alice %+v (%v), want unavailable", p, ok)
	}

	// Two minutes on, with her sync still open, she is still there.
	clock.Advance(2 * time.Minute)
	e.sync(carol, nil) // any sync applies what fell due
	seen("two minutes into alice's long-poll", "")
	status := e.get(bob.AccessToken, "/_matrix/client/v3/presence/"+url.PathEscape(alice.UserID)+"/status", nil)
	if status.Status != http.StatusOK || status.String("presence") != node.PresenceUnavailable {
		t.Errorf("presence status during the long-poll: %d %s", status.Status, status.Raw)
	}

	// News ends her long-poll; her client then stays away.
	e.send(bob, roomID, "m.room.message", map[string]string{"msgtype": "m.text", "body": "hi"})
	if res := <-aliceDone; res.Status != http.StatusOK || !strings.Contains(string(res.Raw), `"body":"hi"`) {
		t.Fatalf("alice's long-poll did not last until bob's message: %d %s", res.Status, res.Raw)
	}
	clock.Advance(29 * time.Second)
	seen("29 seconds after alice's last sync", "")
	clock.Advance(2 * time.Second)
	seen("31 seconds after alice's last sync", node.PresenceOffline)
}
