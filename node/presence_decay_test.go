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

// syncOnce runs a sync that ends at once: an initial sync, or one that had news.
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
		// armed is when the one timer is then due, after alice's first
		// sync (zero: not checked).
		armed time.Duration
	}{
		{"alice's client syncs", 0, func() { syncOnce(t, n, a, "") }, PresenceOnline, []string{a + " online -"}, true, syncOnlineTimeout},
		{"just under the sync timeout", syncOnlineTimeout - time.Second, nil, PresenceOnline, []string{}, false, 0},
		{"a long-poll starts in time", 0, func() {
			var err error
			if endLongPoll, err = n.BeginSync(ctx, a, ""); err != nil {
				t.Fatal(err)
			}
		}, PresenceOnline, []string{}, false, 0},
		{"while it is in flight, past the sync timeout", 2 * time.Minute, nil, PresenceOnline, []string{}, false, idleTimeout},
		{"idle while in flight", idleTimeout, nil, PresenceUnavailable, []string{a + " unavailable -"}, true, 0},
		{"the long-poll ends", 0, func() { endLongPoll() }, PresenceUnavailable, []string{}, false,
			syncOnlineTimeout - time.Second + 2*time.Minute + idleTimeout + syncOnlineTimeout},
		{"just under the sync timeout after it", syncOnlineTimeout - time.Second, nil, PresenceUnavailable, []string{}, false, 0},
		{"past it", 2 * time.Second, nil, PresenceOffline, []string{a + " offline -"}, true, 0},
		{"hours later", 3 * time.Hour, nil, PresenceOffline, []string{}, false, 0},
	}
	start := clock.now()
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
		if at, want := armedAt(n), start.Add(st.armed); st.armed != 0 && !at.Equal(want) {
			t.Errorf("%s: timer armed for %v, want %v", st.name, at, want)
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

// TestDecayPresencePolicy is the decay policy case by case: what a stored
// presence becomes at a given time, and when it is next due.
func TestDecayPresencePolicy(t *testing.T) {
	const t0 = int64(1_700_000_000_000)
	ms := func(d time.Duration) int64 { return d.Milliseconds() }
	online := presenceRecord{Presence: PresenceOnline, LastActiveTS: t0, FedTS: t0}
	cases := []struct {
		name     string
		rec      presenceRecord
		local    bool
		syncing  bool
		syncEnd  int64
		at       time.Duration // after t0
		want     string
		wantNext int64 // 0: nothing due
	}{
		{"syncing, active: idle timer next", online, true, true, 0, time.Minute, PresenceOnline, t0 + ms(idleTimeout)},
		{"syncing, idle", online, true, true, 0, idleTimeout, PresenceUnavailable, t0 + ms(federationPing)},
		{"sync ended: offline timer next", online, true, false, t0 + ms(time.Minute), time.Minute, PresenceOnline, t0 + ms(time.Minute+syncOnlineTimeout)},
		{"sync ended long ago", online, true, false, t0 + ms(time.Minute), 2 * time.Minute, PresenceOffline, 0},
		{"last sync unknown: last active plus a refresh stands in", online, true, false, 0, time.Minute, PresenceOnline, t0 + ms(presenceActiveRefresh+syncOnlineTimeout)},
		{"last sync unknown, hours later", online, true, false, 0, 3 * time.Hour, PresenceOffline, 0},
		{"set unavailable by syncing: offline without syncs", presenceRecord{Presence: PresenceUnavailable, LastActiveTS: t0, FedTS: t0}, true, false, t0, time.Hour, PresenceOffline, 0},
		{"set unavailable by the user: stays, sent again", presenceRecord{Presence: PresenceUnavailable, Manual: true, LastActiveTS: t0, FedTS: t0}, true, false, t0, time.Hour, PresenceUnavailable, t0 + ms(federationPing)},
		{"set online by the user: decays", presenceRecord{Presence: PresenceOnline, Manual: true, LastActiveTS: t0, FedTS: t0}, true, false, 0, time.Hour, PresenceOffline, 0},
		{"offline: nothing due", presenceRecord{Presence: PresenceOffline, LastActiveTS: t0}, true, false, 0, time.Hour, PresenceOffline, 0},
		{"remote, heard from lately", online, false, false, 0, time.Minute, PresenceOnline, t0 + ms(federationTimeout)},
		{"remote, server quiet", online, false, false, 0, federationTimeout, PresenceOffline, 0},
		{"remote, from before decay was kept", presenceRecord{Presence: PresenceOnline, LastActiveTS: t0}, false, false, 0, 0, PresenceOffline, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, next := decayPresence(c.rec, c.local, c.syncing, c.syncEnd, t0+ms(c.at))
			if p != c.want || next != c.wantNext {
				t.Errorf("got %s, next %d; want %s, next %d", p, next, c.want, c.wantNext)
			}
		})
	}
}
