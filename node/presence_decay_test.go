package node

import (
	"context"
	"slices"
	"testing"
	"time"
)

// decayNode opens a node on dir whose clock is clock from the start, so
// what New does about presence runs on it too.
func decayNode(t *testing.T, dir string, clock *fakeClock) *Node {
	t.Helper()
	cfg := testConfig(dir)
	cfg.NoSyncWrites, cfg.Clock = true, clock.now
	return openNode(t, cfg)
}

// presenceOf is a user's presence as GET /presence/{userId}/status reports it.
func presenceOf(t *testing.T, n *Node, userID string) string {
	t.Helper()
	ps, err := n.Presence(context.Background(), userID)
	if err != nil {
		t.Fatalf("presence of %s: %v", userID, err)
	}
	return ps.Presence
}

// presenceFeed follows what a user's incremental /sync reports of presence.
type presenceFeed struct {
	t       *testing.T
	n       *Node
	forUser string
	from    uint64
}

// next returns the presence changes since the previous call, as
// presenceNames renders them.
func (f *presenceFeed) next() []string {
	f.t.Helper()
	to := f.n.PresencePosition()
	got, err := f.n.PresenceSince(context.Background(), f.forUser, f.from, to)
	if err != nil {
		f.t.Fatal(err)
	}
	f.from = to
	return presenceNames(got)
}

// armedAt is when the presence timer is due to fire (zero: not armed).
func armedAt(n *Node) time.Time {
	n.presenceWatch.mu.Lock()
	defer n.presenceWatch.mu.Unlock()
	if n.presenceWatch.due == 0 {
		return time.Time{}
	}
	return time.UnixMilli(n.presenceWatch.due)
}

// syncDone ends a sync at once: an initial sync, or one that had news.
func syncOnce(t *testing.T, n *Node, userID, setPresence string) {
	t.Helper()
	end, err := n.BeginSync(context.Background(), userID, setPresence)
	if err != nil {
		t.Fatal(err)
	}
	end()
}

// TestPresenceDecaysLocal: a local user who syncs is online; with a sync in
// flight they stay so, until idle for idleTimeout, when they go
// unavailable; once their syncs stop, they go offline syncOnlineTimeout
// later. Each change wakes a room-mate, whose /sync reports it. One timer
// is armed for the next change, and nothing is held once all is settled.
func TestPresenceDecaysLocal(t *testing.T) {
	ctx := context.Background()
	clock := newFakeClock()
	n := decayNode(t, t.TempDir(), clock)
	alice, bob, carol := session(n, "alice"), session(n, "bob"), session(n, "carol")
	sharedRoom(t, n, alice, bob)
	sharedRoom(t, n, carol)
	a := alice.UserID
	bobs := &presenceFeed{t: t, n: n, forUser: bob.UserID, from: n.PresencePosition()}

	var endLongPoll func()
	steps := []struct {
		name    string
		advance time.Duration
		act     func()
		want    string   // alice's presence afterwards
		bobSees []string // what bob's next /sync reports of presence
		woken   bool     // whether bob was woken
	}{
		{"alice's client syncs", 0, func() { syncOnce(t, n, a, "") }, PresenceOnline, []string{a + " online -"}, true},
		{"just under the sync timeout", syncOnlineTimeout - time.Second, nil, PresenceOnline, []string{}, false},
		{"a long-poll starts in time", 0, func() {
			var err error
			if endLongPoll, err = n.BeginSync(ctx, a, ""); err != nil {
				t.Fatal(err)
			}
		}, PresenceOnline, []string{}, false},
		{"while it is in flight, past the sync timeout", 2 * time.Minute, nil, PresenceOnline, []string{}, false},
		{"idle while in flight", idleTimeout, nil, PresenceUnavailable, []string{a + " unavailable -"}, true},
		{"the long-poll ends", 0, func() { endLongPoll() }, PresenceUnavailable, []string{}, false},
		{"just under the sync timeout after it", syncOnlineTimeout - time.Second, nil, PresenceUnavailable, []string{}, false},
		{"past it", 2 * time.Second, nil, PresenceOffline, []string{a + " offline -"}, true},
		{"hours later", 3 * time.Hour, nil, PresenceOffline, []string{}, false},
	}
	for _, st := range steps {
		ls := listeners(t, n, bob, carol)
		clock.advance(st.advance)
		if st.act != nil {
			st.act()
		}
		n.sweepPresence() // what the timer runs when it fires
		if got := presenceOf(t, n, a); got != st.want {
			t.Fatalf("%s: alice is %s, want %s", st.name, got, st.want)
		}
		if got := bobs.next(); !slices.Equal(got, st.bobSees) {
			t.Errorf("%s: bob's sync reports %q, want %q", st.name, got, st.bobSees)
		}
		if st.woken {
			checkWoken(t, ls, bob)
		} else {
			checkWoken(t, ls)
		}
		if st.name == "alice's client syncs" {
			// One timer, for alice's offline timeout.
			if at, want := armedAt(n), clock.now().Add(syncOnlineTimeout); !at.Equal(want) {
				t.Errorf("timer armed for %v, want %v", at, want)
			}
		}
	}
	n.presenceWatch.mu.Lock()
	held := len(n.presenceWatch.users)
	n.presenceWatch.mu.Unlock()
	if held != 0 || !armedAt(n).IsZero() {
		t.Errorf("settled, yet %d users held and timer armed for %v", held, armedAt(n))
	}
}

// TestPresenceSetByUserStays: unavailable or offline as the user set it
// does not decay; a sync with set_presence=offline neither sets presence
// nor keeps it up; going online through the presence API decays as a sync
// would.
func TestPresenceSetByUserStays(t *testing.T) {
	ctx := context.Background()
	clock := newFakeClock()
	n := decayNode(t, t.TempDir(), clock)
	alice, bob, dave := session(n, "alice"), session(n, "bob"), session(n, "dave")
	sharedRoom(t, n, alice, bob, dave)
	if err := n.SetPresence(ctx, alice.UserID, PresenceUnavailable, strPtr("away")); err != nil {
		t.Fatal(err)
	}
	if err := n.SetPresence(ctx, bob.UserID, PresenceOffline, nil); err != nil {
		t.Fatal(err)
	}
	syncOnce(t, n, bob.UserID, PresenceOffline)
	if err := n.SetPresence(ctx, dave.UserID, PresenceOnline, nil); err != nil {
		t.Fatal(err)
	}
	clock.advance(2 * time.Hour)
	n.sweepPresence()
	for _, c := range []struct {
		user Session
		want string
	}{{alice, PresenceUnavailable}, {bob, PresenceOffline}, {dave, PresenceOffline}} {
		if got := presenceOf(t, n, c.user.UserID); got != c.want {
			t.Errorf("%s is %s two hours later, want %s", c.user.UserID, got, c.want)
		}
	}
}

// TestPresenceDecaysRemote: a remote user's presence stands while their
// server repeats it within federationTimeout, and goes offline when it
// does not, which the local room-mate's /sync reports. A local user's decay
// goes to the remote server, and their unchanged presence is sent again
// every federationPing.
func TestPresenceDecaysRemote(t *testing.T) {
	ctx := context.Background()
	clock := newFakeClock()
	n := decayNode(t, t.TempDir(), clock)
	r := newRemoteServer(t)
	d, x := roomWithRemoteMember(t, n, r)
	alice := Session{UserID: d.user("alice")}
	drainTxn(t, n, r.name)
	feed := &presenceFeed{t: t, n: n, forUser: alice.UserID, from: n.PresencePosition()}
	tell := func() {
		if err := n.ReceivePresence(ctx, r.name, RemotePresence{UserID: x, Presence: PresenceOnline}); err != nil {
			t.Fatal(err)
		}
	}
	steps := []struct {
		name    string
		advance time.Duration
		act     func()
		want    string
		sees    []string
	}{
		{"x comes online", 0, tell, PresenceOnline, []string{x + " online -"}},
		{"29 minutes on", federationTimeout - time.Minute, nil, PresenceOnline, []string{}},
		{"x's server says it again", 0, tell, PresenceOnline, []string{}},
		{"29 minutes after that", federationTimeout - time.Minute, nil, PresenceOnline, []string{}},
		{"x's server went quiet", 2 * time.Minute, nil, PresenceOffline, []string{x + " offline -"}},
	}
	for _, st := range steps {
		ls := listeners(t, n, alice)
		clock.advance(st.advance)
		if st.act != nil {
			st.act()
		}
		n.sweepPresence()
		if got := presenceOf(t, n, x); got != st.want {
			t.Fatalf("%s: x is %s, want %s", st.name, got, st.want)
		}
		got := feed.next()
		if !slices.Equal(got, st.sees) {
			t.Errorf("%s: alice's sync reports %q, want %q", st.name, got, st.sees)
		}
		if len(st.sees) > 0 {
			checkWoken(t, ls, alice)
		} else {
			checkWoken(t, ls)
		}
	}

	sent := func() []string {
		t.Helper()
		var out []string
		for _, e := range edusOf(t, drainTxn(t, n, r.name), EDUPresence) {
			for _, p := range e["push"].([]any) {
				p := p.(map[string]any)
				out = append(out, p["user_id"].(string)+" "+p["presence"].(string))
			}
		}
		return out
	}
	syncOnce(t, n, alice.UserID, "")
	if got, want := sent(), []string{alice.UserID + " online"}; !slices.Equal(got, want) {
		t.Errorf("alice online: sent %q, want %q", got, want)
	}
	clock.advance(syncOnlineTimeout + time.Second)
	n.sweepPresence()
	if got, want := sent(), []string{alice.UserID + " offline"}; !slices.Equal(got, want) {
		t.Errorf("alice's client gone: sent %q, want %q", got, want)
	}
	if err := n.SetPresence(ctx, alice.UserID, PresenceUnavailable, nil); err != nil {
		t.Fatal(err)
	}
	sent()
	clock.advance(federationPing - time.Second)
	n.sweepPresence()
	if got := sent(); len(got) != 0 {
		t.Errorf("sent %q before the ping was due", got)
	}
	clock.advance(time.Second)
	n.sweepPresence()
	if got, want := sent(), []string{alice.UserID + " unavailable"}; !slices.Equal(got, want) {
		t.Errorf("ping: sent %q, want %q", got, want)
	}
}

// TestPresenceDecayAcrossRestart: a node restarted soon after its users'
// clients last synced gives them time to come back; one restarted after
// hours shows nobody online, local or remote, as soon as it opens, and a
// room-mate's /sync reports the change.
func TestPresenceDecayAcrossRestart(t *testing.T) {
	cases := []struct {
		name      string
		down      time.Duration
		wantLocal string
		wantX     string
	}{
		{"restarted at once", 10 * time.Second, PresenceOnline, PresenceOnline},
		{"restarted after hours", 3 * time.Hour, PresenceOffline, PresenceOffline},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			clock := newFakeClock()
			dir := t.TempDir()
			n := decayNode(t, dir, clock)
			r := newRemoteServer(t)
			d, x := roomWithRemoteMember(t, n, r)
			alice, bob := d.user("alice"), n.UserID("bob")
			membership(t, n, Session{UserID: bob}, d.roomID, bob, "join")
			syncOnce(t, n, alice, "")
			if err := n.ReceivePresence(ctx, r.name, RemotePresence{UserID: x, Presence: PresenceOnline}); err != nil {
				t.Fatal(err)
			}
			from := n.PresencePosition()
			if err := n.Close(); err != nil {
				t.Fatal(err)
			}

			clock.advance(c.down)
			n = decayNode(t, dir, clock)
			defer n.Close()
			if got := presenceOf(t, n, alice); got != c.wantLocal {
				t.Errorf("alice is %s on reopening, want %s", got, c.wantLocal)
			}
			if got := presenceOf(t, n, x); got != c.wantX {
				t.Errorf("x is %s on reopening, want %s", got, c.wantX)
			}
			feed := &presenceFeed{t: t, n: n, forUser: bob, from: from}
			var want []string
			if c.wantLocal == PresenceOffline {
				want = []string{alice + " offline -", x + " offline -"}
			}
			if got := feed.next(); !slices.Equal(got, want) && len(got)+len(want) > 0 {
				t.Errorf("bob's sync reports %q, want %q", got, want)
			}
			if c.wantLocal == PresenceOffline {
				return
			}
			// A client that does not come back: offline once the time it
			// was given is up.
			clock.advance(presenceActiveRefresh + syncOnlineTimeout)
			n.sweepPresence()
			if got := presenceOf(t, n, alice); got != PresenceOffline {
				t.Errorf("alice is %s after her client stayed away, want offline", got)
			}
		})
	}
}
