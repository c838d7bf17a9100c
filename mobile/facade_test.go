package mobile

import (
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgenode/edgenode/internal/testnet"
)

// waitFor polls cond (bounded, generously: the machine is shared) and
// fails the test with what() if it never holds.
func waitFor(t *testing.T, cond func() bool, what func() string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after 30 s: %s", what())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func peerAddrs(t *testing.T, n *Node) []string {
	t.Helper()
	s, err := n.PeerAddrs()
	if err != nil {
		t.Fatal(err)
	}
	var addrs []string
	if err := json.Unmarshal([]byte(s), &addrs); err != nil {
		t.Fatalf("PeerAddrs %q: %v", s, err)
	}
	slices.Sort(addrs)
	return addrs
}

// quicPort is the UDP port of the first QUIC address in addrs.
func quicPort(t *testing.T, addrs []string) string {
	t.Helper()
	for _, a := range addrs {
		parts := strings.Split(a, "/")
		for i, p := range parts {
			if p == "udp" && i+2 < len(parts) && parts[i+2] == "quic-v1" {
				return parts[i+1]
			}
		}
	}
	t.Fatalf("no QUIC address in %v", addrs)
	return ""
}

// TestNetworkChange drives the Android 11+ flow: the app cannot list
// interfaces, so it passes its addresses before Start and again when the
// network changes. A node listening on 0.0.0.0 advertises exactly the
// given addresses with its listen port; hostile or malformed lists are
// errors that change nothing; after NetworkChanged another node still
// reaches it at the advertised loopback address.
func TestNetworkChange(t *testing.T) {
	cfg := `{"p2p_listen": ["/ip4/0.0.0.0/udp/0/quic-v1"], "mdns": false, "dht": false, "no_sync_writes": true}`
	a, err := NewNode(t.TempDir(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.SetInterfaceAddrs(`["127.0.0.1", "192.0.2.7", "fe80::1", "::ffff:192.0.2.7"]`); err != nil {
		t.Fatal(err)
	}
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	defer a.Stop()
	addrs := peerAddrs(t, a)
	port := quicPort(t, addrs)
	id := strings.Split(addrs[0], "/p2p/")[1]
	want := func(ips ...string) []string {
		var out []string
		for _, ip := range ips {
			out = append(out, "/ip4/"+ip+"/udp/"+port+"/quic-v1/p2p/"+id)
		}
		slices.Sort(out)
		return out
	}
	if !slices.Equal(addrs, want("127.0.0.1", "192.0.2.7")) {
		t.Fatalf("advertised %v, want the app's addresses only: %v", addrs, want("127.0.0.1", "192.0.2.7"))
	}

	for _, bad := range []string{
		``, `not json`, `{"ip": "127.0.0.1"}`, `[1]`, `[null]`, `["300.1.1.1"]`, `["127.0.0.1/8"]`,
		`["0.0.0.0"]`, `["::"]`, `["224.0.0.1"]`, `["ff02::1"]`, `["fe80::1%wlan0"]`,
		`[` + strings.Repeat(`"10.0.0.1",`, 64) + `"10.0.0.2"]`,
		`["` + strings.Repeat("1", 1<<20) + `"]`,
	} {
		if err := a.SetInterfaceAddrs(bad); err == nil {
			t.Errorf("SetInterfaceAddrs accepted %.60q", bad)
		}
	}
	if got := peerAddrs(t, a); !slices.Equal(got, want("127.0.0.1", "192.0.2.7")) {
		t.Fatalf("rejected input changed the addresses: %v", got)
	}

	// Another node connects at the advertised loopback address.
	b := startNode(t, t.TempDir(), testConfig)
	if err := b.Connect(want("127.0.0.1")[0]); err != nil {
		t.Fatal(err)
	}
	// The network changes: the phone moved to another address.
	if err := a.SetInterfaceAddrs(`["127.0.0.1", "198.51.100.4"]`); err != nil {
		t.Fatal(err)
	}
	if err := a.NetworkChanged(); err != nil {
		t.Fatal(err)
	}
	if got := peerAddrs(t, a); !slices.Equal(got, want("127.0.0.1", "198.51.100.4")) {
		t.Fatalf("after the change: %v, want %v", got, want("127.0.0.1", "198.51.100.4"))
	}
	// A live connection survives the check, and the node stays reachable.
	waitFor(t, func() bool {
		ps := peers(t, b)
		return len(ps) == 1 && ps[0].ServerName == a.ServerName()
	}, func() string { return "b lost a after the network change" })
	if err := b.Connect(want("127.0.0.1")[0]); err != nil {
		t.Fatalf("connect after the change: %v", err)
	}
	// "[]" goes back to listing interfaces: loopback at least is listed.
	if err := a.SetInterfaceAddrs(`[]`); err != nil {
		t.Fatal(err)
	}
	if got := peerAddrs(t, a); slices.Contains(got, want("198.51.100.4")[0]) || !slices.Contains(got, want("127.0.0.1")[0]) {
		t.Fatalf("after clearing: %v", got)
	}
}

// healthRecorder is an app's HealthListener.
type healthRecorder struct {
	mu      sync.Mutex
	changes []string
	stopped []string
}

func (h *healthRecorder) OnHealthChanged(healthy bool, reason string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if healthy {
		reason = "healthy"
	}
	h.changes = append(h.changes, reason)
}

func (h *healthRecorder) OnStopped(reason string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.stopped = append(h.stopped, reason)
}

func (h *healthRecorder) stops() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.stopped...)
}

// breakDataDir makes the database directory unwritable: chmod 0500 for a
// non-root user; as root, which writes through any mode, a regular file in
// its place (what deleting or moving an app's data under it looks like),
// where every file Badger creates fails with ENOTDIR. It returns the undo.
func breakDataDir(t *testing.T, dataDir string) (restore func()) {
	t.Helper()
	db := filepath.Join(dataDir, "db")
	if os.Geteuid() != 0 {
		if err := os.Chmod(db, 0o500); err != nil {
			t.Fatal(err)
		}
		return func() { _ = os.Chmod(db, 0o700) }
	}
	if err := os.Rename(db, db+".moved"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(db, []byte("not a directory"), 0o600); err != nil {
		t.Fatal(err)
	}
	return func() {
		_ = os.Remove(db)
		_ = os.Rename(db+".moved", db)
	}
}

// TestDeathCallback: the data directory becomes unwritable under a running
// node; the app's HealthListener hears OnStopped with the reason, IsRunning
// turns false and the client API stops answering. Once the directory is
// back, the node starts again with its data.
func TestDeathCallback(t *testing.T) {
	dir := t.TempDir()
	n, err := NewNode(dir, testConfig)
	if err != nil {
		t.Fatal(err)
	}
	n.dataDirCheck = 50 * time.Millisecond
	hl := &healthRecorder{}
	n.SetHealthListener(hl)
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	defer n.Stop()
	if !n.IsHealthy() || n.HealthReason() != "" {
		t.Fatalf("unhealthy at start: %s", n.HealthReason())
	}
	if _, err := n.CreateAccount("alice", "pw", ""); err != nil {
		t.Fatal(err)
	}
	base := n.BaseURL()

	restore := breakDataDir(t, dir)
	defer restore()
	waitFor(t, func() bool { return len(hl.stops()) > 0 }, func() string { return "no OnStopped after the data directory broke" })
	if got := hl.stops(); len(got) != 1 || !strings.Contains(got[0], "data directory") {
		t.Fatalf("OnStopped %q", got)
	}
	if n.IsRunning() || n.BaseURL() != "" || n.IsHealthy() {
		t.Fatal("the node looks running after it stopped")
	}
	if _, err := n.Login("alice", "pw", "", ""); err != ErrNotRunning {
		t.Fatalf("Login after the stop: %v, want ErrNotRunning", err)
	}
	if resp, err := http.Get(base + "/_matrix/client/versions"); err == nil {
		resp.Body.Close()
		t.Fatal("the client API answers after the node stopped")
	}

	// The directory is back: Start works again (once Badger, which kept
	// retrying its flush, has let go of the directory) and alice is there.
	restore()
	waitFor(t, func() bool { return n.Start() == nil }, func() string { return "Start after the directory came back kept failing" })
	if _, err := n.Login("alice", "pw", "", ""); err != nil {
		t.Fatalf("alice after the restart: %v", err)
	}
}

// eventRecorder is an app's EventListener.
type eventRecorder struct {
	mu  sync.Mutex
	got []recordedEvent
}

type recordedEvent struct {
	userID, roomID, eventID, sender string
	notify, highlight               bool
}

func (r *eventRecorder) OnEvent(userID, roomID, eventID, sender string, notify, highlight bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, recordedEvent{userID, roomID, eventID, sender, notify, highlight})
}

func (r *eventRecorder) find(eventID string) (recordedEvent, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.got {
		if e.eventID == eventID {
			return e, true
		}
	}
	return recordedEvent{}, false
}

func (r *eventRecorder) all() []recordedEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]recordedEvent(nil), r.got...)
}

// TestEventHook: two nodes over QUIC on loopback. bob (on B) joins alice's
// room on A. B's EventListener hears alice's message for bob, notifying;
// her notice, not notifying; her mention of bob, highlighting; and never
// bob's own message (which A's listener hears, for alice).
func TestEventHook(t *testing.T) {
	a := startNode(t, t.TempDir(), testConfig)
	b := startNode(t, t.TempDir(), testConfig)
	ra, rb := &eventRecorder{}, &eventRecorder{}
	a.SetEventListener(ra)
	b.SetEventListener(rb)
	addrs := peerAddrs(t, a)
	if err := b.Connect(addrs[0]); err != nil {
		t.Fatal(err)
	}
	alice, err := a.CreateAccount("alice", "pw", "")
	if err != nil {
		t.Fatal(err)
	}
	bob, err := b.CreateAccount("bob", "pw", "")
	if err != nil {
		t.Fatal(err)
	}
	room := call(t, "POST", a.BaseURL()+"/_matrix/client/v3/createRoom", alice.AccessToken, map[string]any{"preset": "public_chat"})["room_id"].(string)
	if status, body := testnet.Join(t, b.BaseURL(), bob.AccessToken, room, a.ServerName()); status != http.StatusOK {
		t.Fatalf("join: %d %v", status, body)
	}
	sendAs := func(n *Node, s *Session, txn string, content map[string]any) string {
		return call(t, "PUT", n.BaseURL()+"/_matrix/client/v3/rooms/"+url.PathEscape(room)+"/send/m.room.message/"+txn, s.AccessToken, content)["event_id"].(string)
	}
	heard := func(r *eventRecorder, eventID string) recordedEvent {
		t.Helper()
		waitFor(t, func() bool { _, ok := r.find(eventID); return ok }, func() string { return "event " + eventID + " not heard" })
		e, _ := r.find(eventID)
		return e
	}

	// bob's own message: A hears it for alice.
	own := sendAs(b, bob, "b1", map[string]any{"msgtype": "m.text", "body": "hi from bob"})
	if e := heard(ra, own); e.userID != alice.UserID || e.sender != bob.UserID || !e.notify {
		t.Fatalf("A heard bob's message as %+v", e)
	}
	msg := sendAs(a, alice, "a1", map[string]any{"msgtype": "m.text", "body": "hello there"})
	notice := sendAs(a, alice, "a2", map[string]any{"msgtype": "m.notice", "body": "automated"})
	mention := sendAs(a, alice, "a3", map[string]any{"msgtype": "m.text", "body": "look", "m.mentions": map[string]any{"user_ids": []string{bob.UserID}}})
	for _, tc := range []struct {
		name, event       string
		notify, highlight bool
	}{
		{"message", msg, true, false},
		{"notice", notice, false, false},
		{"mention", mention, true, true},
	} {
		e := heard(rb, tc.event)
		if e.userID != bob.UserID || e.roomID != room || e.sender != alice.UserID || e.notify != tc.notify || e.highlight != tc.highlight {
			t.Errorf("%s: B heard %+v, want notify %v highlight %v", tc.name, e, tc.notify, tc.highlight)
		}
	}
	// bob's own message was committed on B before any of alice's: had it
	// been reported to bob, it would have been heard by now.
	for _, e := range rb.all() {
		if e.sender == bob.UserID {
			t.Errorf("bob was told of his own event %+v", e)
		}
	}
	if d := b.DroppedEvents(); d != 0 {
		t.Errorf("%d events dropped with a listener that keeps up", d)
	}
}

// TestRebindAndStablePort: RebindClient keeps the client API's address;
// the port picked at the first start is kept in the data directory and
// used again, and a new one is picked (and kept) when it is taken.
func TestRebindAndStablePort(t *testing.T) {
	dir := t.TempDir()
	n, err := NewNode(dir, testConfig)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.RebindClient(); err != ErrNotRunning {
		t.Fatalf("RebindClient before Start: %v", err)
	}
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	defer n.Stop()
	first := n.BaseURL()
	call(t, "GET", first+"/_matrix/client/versions", "", nil)
	if err := n.RebindClient(); err != nil {
		t.Fatal(err)
	}
	if n.BaseURL() != first || !n.IsHealthy() {
		t.Fatalf("after RebindClient: %s (was %s), healthy %v", n.BaseURL(), first, n.IsHealthy())
	}
	call(t, "GET", first+"/_matrix/client/versions", "", nil)

	restart := func() string {
		t.Helper()
		if err := n.Stop(); err != nil {
			t.Fatal(err)
		}
		if err := n.Start(); err != nil {
			t.Fatal(err)
		}
		call(t, "GET", n.BaseURL()+"/_matrix/client/versions", "", nil)
		return n.BaseURL()
	}
	if got := restart(); got != first {
		t.Fatalf("restart moved the client API: %s -> %s", first, got)
	}
	// Something else took the port while the node was stopped.
	if err := n.Stop(); err != nil {
		t.Fatal(err)
	}
	squatter, err := net.Listen("tcp", strings.TrimPrefix(first, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	second := n.BaseURL()
	squatter.Close()
	if second == first {
		t.Fatal("started on a taken port")
	}
	call(t, "GET", second+"/_matrix/client/versions", "", nil)
	if got := restart(); got != second {
		t.Fatalf("the new port was not kept: %s -> %s", second, got)
	}
}

func TestVersion(t *testing.T) {
	if v := Version(); v == "" || strings.ContainsAny(v, " \n") {
		t.Fatalf("Version() = %q", v)
	}
}
