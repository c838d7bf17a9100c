package mobile

import (
	"encoding/json"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgenode/edgenode/internal/testnet"
)

// testConfig keeps a test node on loopback and quiet on the LAN.
const testConfig = `{"p2p_listen": ["/ip4/127.0.0.1/udp/0/quic-v1", "/ip4/127.0.0.1/tcp/0"],
	"mdns": false, "dht": false, "no_sync_writes": true, "log_level": "debug"}`

// recordLogger is a Logger that keeps the lines it gets.
type recordLogger struct {
	mu    sync.Mutex
	lines []string
	level map[int]int
}

func (l *recordLogger) Log(level int, message string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, message)
	if l.level == nil {
		l.level = map[int]int{}
	}
	l.level[level]++
}

func (l *recordLogger) has(substr string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range l.lines {
		if strings.Contains(s, substr) {
			return true
		}
	}
	return false
}

func startNode(t *testing.T, dir, cfg string) *Node {
	t.Helper()
	n, err := NewNode(dir, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := n.Stop(); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	return n
}

// call makes a client API request as an app's Matrix client would (u is
// the whole URL) and fails the test on a status other than 200.
func call(t *testing.T, method, u, token string, body any) map[string]any {
	t.Helper()
	return testnet.MustCall(t, u, method, "", token, body)
}

// TestAppLifecycle drives the facade as an app does: start, create the
// account (no HTTP round trip), send a message through the base URL, stop,
// start again on the same directory, and read the message back.
func TestAppLifecycle(t *testing.T) {
	dir := t.TempDir()
	logs := &recordLogger{}
	n, err := NewNode(dir, testConfig)
	if err != nil {
		t.Fatal(err)
	}
	n.SetLogger(logs)
	if n.IsRunning() || n.BaseURL() != "" {
		t.Fatal("a new node is running before Start")
	}
	if _, err := n.CreateAccount("alice", "pw", ""); err != ErrNotRunning {
		t.Fatalf("CreateAccount before Start: %v, want ErrNotRunning", err)
	}
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	if err := n.Start(); err == nil {
		t.Fatal("second Start succeeded")
	}
	base, name := n.BaseURL(), n.ServerName()
	if !strings.HasPrefix(base, "http://127.0.0.1:") || len(name) != 64 {
		t.Fatalf("BaseURL %q, ServerName %q", base, name)
	}
	call(t, "GET", base+"/_matrix/client/versions", "", nil)

	sess, err := n.CreateAccount("alice", "correct horse", "phone")
	if err != nil {
		t.Fatal(err)
	}
	if sess.UserID != "@alice:"+name || sess.AccessToken == "" || sess.DeviceID == "" {
		t.Fatalf("session %+v", sess)
	}
	if _, err := n.CreateAccount("alice", "x", ""); err == nil {
		t.Fatal("a second account alice was created")
	}
	room := call(t, "POST", base+"/_matrix/client/v3/createRoom", sess.AccessToken, map[string]any{"name": "notes"})["room_id"].(string)
	sent := call(t, "PUT", base+"/_matrix/client/v3/rooms/"+url.PathEscape(room)+"/send/m.room.message/txn1", sess.AccessToken,
		map[string]any{"msgtype": "m.text", "body": "hello from the app"})["event_id"].(string)

	if err := n.Stop(); err != nil {
		t.Fatal(err)
	}
	if n.IsRunning() || n.BaseURL() != "" {
		t.Fatal("running after Stop")
	}
	if err := n.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	if err := n.Start(); err != nil {
		t.Fatalf("restart: %v", err)
	}
	defer func() {
		if err := n.Stop(); err != nil {
			t.Errorf("stop: %v", err)
		}
	}()
	if n.ServerName() != name {
		t.Fatalf("server name changed across restart: %s -> %s", name, n.ServerName())
	}
	// The old token still works, and a fresh login gets a new device.
	base = n.BaseURL()
	msgs := call(t, "GET", base+"/_matrix/client/v3/rooms/"+url.PathEscape(room)+"/messages?dir=b&limit=20", sess.AccessToken, nil)
	found := false
	for _, ev := range msgs["chunk"].([]any) {
		e := ev.(map[string]any)
		if e["event_id"] == sent && e["content"].(map[string]any)["body"] == "hello from the app" {
			found = true
		}
	}
	if !found {
		t.Fatalf("message %s not found after restart: %v", sent, msgs)
	}
	again, err := n.Login("alice", "correct horse", "", "tablet")
	if err != nil {
		t.Fatal(err)
	}
	if again.DeviceID == sess.DeviceID || again.AccessToken == "" {
		t.Fatalf("login %+v", again)
	}
	if _, err := n.Login("alice", "wrong", "", ""); err == nil {
		t.Fatal("login with a wrong password succeeded")
	}
	call(t, "GET", base+"/_matrix/client/v3/sync?timeout=0", again.AccessToken, nil)
	if !logs.has("edgenode started") {
		t.Fatal("the log callback got no start line")
	}
	logs.mu.Lock()
	defer logs.mu.Unlock()
	if logs.level[LevelDebug]+logs.level[LevelInfo] == 0 {
		t.Fatalf("log levels %v", logs.level)
	}
}

type peerList []struct {
	ServerName string   `json:"server_name"`
	Addrs      []string `json:"addrs"`
}

func peers(t *testing.T, n *Node) peerList {
	t.Helper()
	s, err := n.Peers()
	if err != nil {
		t.Fatal(err)
	}
	var out peerList
	if err := json.Unmarshal([]byte(s), &out); err != nil {
		t.Fatalf("Peers %q: %v", s, err)
	}
	return out
}

// TestConnectPeersSuspend connects two nodes by multiaddr, lists peers as
// JSON, and checks that Suspend keeps a peer added with Connect.
func TestConnectPeersSuspend(t *testing.T) {
	a := startNode(t, t.TempDir(), testConfig)
	b := startNode(t, t.TempDir(), testConfig)
	if got := peers(t, a); len(got) != 0 {
		t.Fatalf("peers before connecting: %v", got)
	}
	var addrs []string
	s, err := b.PeerAddrs()
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(s), &addrs); err != nil || len(addrs) == 0 {
		t.Fatalf("PeerAddrs %q: %v", s, err)
	}
	if err := a.Connect(addrs[0]); err != nil {
		t.Fatal(err)
	}
	if err := a.Connect("/ip4/127.0.0.1/tcp/1"); err == nil {
		t.Fatal("Connect without /p2p/ succeeded")
	}
	waitPeer := func(n *Node, want string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			got := peers(t, n)
			if len(got) == 1 && got[0].ServerName == want && len(got[0].Addrs) > 0 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("peers of %s: %v, want only %s", n.ServerName(), got, want)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitPeer(a, b.ServerName())
	waitPeer(b, a.ServerName())

	if err := a.Suspend(); err != nil {
		t.Fatal(err)
	}
	if err := a.Suspend(); err != nil {
		t.Fatal(err)
	}
	waitPeer(a, b.ServerName()) // protected: Connect was asked for it
	if err := a.Resume(); err != nil {
		t.Fatal(err)
	}
	waitPeer(a, b.ServerName())
}

func TestNoPanicCrosses(t *testing.T) {
	// A nil *Node is what a binding bug or a use after free could hand Go.
	var n *Node
	if err := n.Start(); err == nil || !strings.Contains(err.Error(), "internal error") {
		t.Fatalf("Start on nil: %v", err)
	}
	if n.BaseURL() != "" || n.IsRunning() {
		t.Fatal("nil node looks running")
	}
	if _, err := n.Peers(); err == nil {
		t.Fatal("Peers on nil succeeded")
	}
	for name, err := range map[string]error{
		"SetInterfaceAddrs": n.SetInterfaceAddrs(`["127.0.0.1"]`),
		"NetworkChanged":    n.NetworkChanged(),
		"RebindClient":      n.RebindClient(),
	} {
		if err == nil {
			t.Errorf("%s on nil succeeded", name)
		}
	}
	n.SetHealthListener(&healthRecorder{})
	n.SetEventListener(&eventRecorder{})
	if n.IsHealthy() || n.DroppedEvents() != 0 {
		t.Fatal("nil node looks healthy")
	}
	_ = n.HealthReason()
}

func TestConfig(t *testing.T) {
	for _, bad := range []string{
		`{"client_listen": "0.0.0.0:8008"}`,
		`{"client_listen": "192.168.1.2:0"}`,
		`{"storage_profile": "fridge"}`,
		`{"log_level": "loud"}`,
		`{"mdsn": false}`,
		`[1]`,
	} {
		if _, err := NewNode(t.TempDir(), bad); err == nil {
			t.Errorf("NewNode accepted %s", bad)
		}
	}
	if _, err := NewNode("", ""); err == nil {
		t.Error("NewNode accepted an empty data directory")
	}
	n, err := NewNode(t.TempDir(), "")
	if err != nil {
		t.Fatal(err)
	}
	if p := n.cfg.p2p(); !p.MDNS || !p.DHT || n.cfg.StorageProfile != "phone" || n.cfg.ClientListen != "127.0.0.1:0" {
		t.Fatalf("defaults: %+v %+v", n.cfg, p)
	}
	n, err = NewNode(t.TempDir(), `{"no_p2p": true, "client_listen": "[::1]:0"}`)
	if err != nil || n.cfg.p2p() != nil {
		t.Fatalf("no_p2p: %v", err)
	}
}

// TestConfigP2PKeys: the libp2p keys of the JSON config are
// p2ptransport.Config's (their one definition), so the facade takes every
// one the command takes, relay_service included, and still refuses the
// fields that are the app's to set.
func TestConfigP2PKeys(t *testing.T) {
	n, err := NewNode(t.TempDir(), `{"p2p_listen": ["/ip4/127.0.0.1/udp/0/quic-v1"], "peers": [], "mdns": false, "dht": null,
		"dht_mode": "auto", "relays": [], "relay_service": true, "reachability": "public"}`)
	if err != nil {
		t.Fatal(err)
	}
	p := n.cfg.p2p()
	if len(p.ListenAddrs) != 1 || p.MDNS || !p.DHT || p.DHTMode != "auto" || !p.RelayService || p.Reachability != "public" {
		t.Fatalf("p2p config: %+v", p.Config)
	}
	for _, bad := range []string{`{"PrivateKey": "AAAA"}`, `{"private_key": "AAAA"}`, `{"profile": "pi"}`, `{"host": null}`} {
		if _, err := NewNode(t.TempDir(), bad); err == nil {
			t.Errorf("NewNode accepted %s", bad)
		}
	}
}
