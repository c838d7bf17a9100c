package federation

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgenode/edgenode/internal/identity"
	"github.com/edgenode/edgenode/internal/testnet"
	"github.com/edgenode/edgenode/node"
	"github.com/edgenode/edgenode/node/core"
)

// fakePeer stands in for a remote server's federation endpoint: it records
// every /send transaction and fails the first `fail` of them with a 500.
type fakePeer struct {
	name string
	srv  *httptest.Server

	mu       sync.Mutex
	fail     int
	hang     int      // requests to leave unanswered until the sender gives up
	limited  int      // requests to answer 429 with retry_after_ms 50
	attempts []string // txn ID of every request, failed or not
	txnSizes []int    // PDUs in each delivered transaction
	bodies   []string // content.body of each delivered PDU, in order
	eduSizes []int    // EDUs in each delivered transaction
	edus     []string // edu_type of each delivered EDU, in order
	noPDUs   int      // requests without a "pdus" array (which the spec requires)
	seen     map[string]bool
	changed  chan struct{}
}

func newFakePeer(t *testing.T) *fakePeer {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p := &fakePeer{name: identity.ServerNameForKey(pub), seen: map[string]bool{}, changed: make(chan struct{}, 1)}
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *fakePeer) serve(w http.ResponseWriter, r *http.Request) {
	txnID, ok := strings.CutPrefix(r.URL.Path, "/_matrix/federation/v1/send/")
	if r.Method != http.MethodPut || !ok {
		http.Error(w, `{"errcode":"M_UNRECOGNIZED"}`, http.StatusNotFound)
		return
	}
	var body struct {
		Origin string            `json:"origin"`
		PDUs   []json.RawMessage `json:"pdus"`
		EDUs   []struct {
			Type string `json:"edu_type"`
		} `json:"edus"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		http.Error(w, `{"errcode":"M_NOT_JSON"}`, http.StatusBadRequest)
		return
	}
	p.mu.Lock()
	if p.hang > 0 { // as a dead connection would: no answer at all
		p.hang--
		p.attempts = append(p.attempts, txnID)
		p.mu.Unlock()
		p.notify()
		<-r.Context().Done()
		return
	}
	defer func() {
		p.mu.Unlock()
		select {
		case p.changed <- struct{}{}:
		default:
		}
	}()
	p.attempts = append(p.attempts, txnID)
	if body.PDUs == nil {
		p.noPDUs++
	}
	if p.limited > 0 {
		p.limited--
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = w.Write([]byte(`{"errcode":"M_LIMIT_EXCEEDED","error":"slow down","retry_after_ms":50}`))
		return
	}
	if p.fail > 0 {
		p.fail--
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte(`{"errcode":"M_UNKNOWN","error":"try later"}`))
		return
	}
	if !p.seen[txnID] { // dedup by transaction ID, as a real server does
		p.seen[txnID] = true
		p.txnSizes = append(p.txnSizes, len(body.PDUs))
		p.eduSizes = append(p.eduSizes, len(body.EDUs))
		for _, e := range body.EDUs {
			p.edus = append(p.edus, e.Type)
		}
		for _, pdu := range body.PDUs {
			var ev struct {
				Content struct {
					Body string `json:"body"`
				} `json:"content"`
			}
			_ = json.Unmarshal(pdu, &ev)
			p.bodies = append(p.bodies, ev.Content.Body)
		}
	}
	_, _ = w.Write([]byte(`{"pdus":{}}`))
}

func (p *fakePeer) notify() {
	select {
	case p.changed <- struct{}{}:
	default:
	}
}

func (p *fakePeer) setFail(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fail = n
}

// snapshot returns copies of what the peer recorded.
func (p *fakePeer) snapshot() (attempts []string, sizes []int, bodies []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.attempts), slices.Clone(p.txnSizes), slices.Clone(p.bodies)
}

// waitFor waits until cond holds of the peer's records.
func (p *fakePeer) waitFor(t *testing.T, timeout time.Duration, what string, cond func(attempts []string, bodies []string) bool) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		a, _, b := p.snapshot()
		if cond(a, b) {
			return
		}
		select {
		case <-p.changed:
		case <-time.After(20 * time.Millisecond):
		case <-deadline:
			t.Fatalf("timed out waiting for %s; attempts %v, bodies %v", what, a, b)
		}
	}
}

func openSenderNode(t *testing.T, dir string) *node.Node {
	t.Helper()
	cfg := testnet.NodeConfig(dir)
	cfg.OpenRegistration = true
	return testnet.OpenNodeUnclosed(t, cfg)
}

// senderSetup is a node with a public room created by local @alice that
// @x of the fake peer has joined.
type senderSetup struct {
	n      *node.Node
	peer   *fakePeer
	roomID string
	alice  string
}

func newSenderSetup(t *testing.T, dir string) senderSetup {
	t.Helper()
	ctx := context.Background()
	n := openSenderNode(t, dir)
	t.Cleanup(func() { n.Close() })
	peer := newFakePeer(t)
	alice := n.UserID("alice")
	roomID := testnet.CreateRoom(ctx, t, n, core.CreateRoomRequest{Creator: alice, Preset: "public_chat"})
	// No federated joins yet: input a join for the remote user directly (the
	// node trusts its caller's identity). Its sender is remote, so it is
	// not itself queued.
	if _, err := n.Join(ctx, "@x:"+peer.name, "DEVX", roomID); err != nil {
		t.Fatalf("remote join: %v", err)
	}
	return senderSetup{n: n, peer: peer, roomID: roomID, alice: alice}
}

func (s senderSetup) startSender(t *testing.T, opts SenderOptions) *Sender {
	t.Helper()
	c := NewClient(s.n, testnet.Routes{s.peer.name: s.peer.srv.URL})
	snd := NewSender(s.n, c, opts)
	if err := snd.Start(context.Background()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(snd.Stop)
	return snd
}

func (s senderSetup) send(t *testing.T, body string) string {
	t.Helper()
	c, _ := json.Marshal(map[string]string{"msgtype": "m.text", "body": body})
	id, err := s.n.SendEvent(context.Background(), core.SendRequest{
		Sender: s.alice, DeviceID: "DEVA", RoomID: s.roomID, Type: "m.room.message", Content: c,
	})
	if err != nil {
		t.Fatalf("send: %v", err)
	}
	return id
}

func bodiesN(prefix string, k int) []string {
	out := make([]string, k)
	for i := range out {
		out[i] = prefix + string(rune('A'+i/26)) + string(rune('a'+i%26))
	}
	return out
}

func waitQueueEmpty(t *testing.T, n *node.Node) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		dests, err := n.Destinations(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(dests) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("queue not empty: %v", dests)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestSenderDeliversInOrderInTransactionsOf50(t *testing.T) {
	s := newSenderSetup(t, t.TempDir())
	want := bodiesN("m", 120)
	// Queue most before the sender starts, so transactions fill up.
	for _, b := range want[:110] {
		s.send(t, b)
	}
	s.startSender(t, SenderOptions{MinBackoff: 10 * time.Millisecond})
	for _, b := range want[110:] {
		s.send(t, b)
	}
	s.peer.waitFor(t, 10*time.Second, "all events", func(_, bodies []string) bool { return len(bodies) >= len(want) })
	_, sizes, bodies := s.peer.snapshot()
	if !slices.Equal(bodies, want) {
		t.Fatalf("delivered %v,\nwant %v", bodies, want)
	}
	for _, n := range sizes {
		if n < 1 || n > 50 {
			t.Fatalf("transaction sizes %v: want 1..50", sizes)
		}
	}
	if sizes[0] != 50 || sizes[1] != 50 {
		t.Fatalf("transaction sizes %v: the backlog should go 50 at a time", sizes)
	}
	waitQueueEmpty(t, s.n)
}

func TestSenderRetriesWithSameTxnID(t *testing.T) {
	s := newSenderSetup(t, t.TempDir())
	s.peer.setFail(3)
	s.startSender(t, SenderOptions{MinBackoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond})
	s.send(t, "hello")
	s.peer.waitFor(t, 10*time.Second, "delivery", func(_, bodies []string) bool { return len(bodies) == 1 })
	attempts, _, bodies := s.peer.snapshot()
	if len(attempts) != 4 || bodies[0] != "hello" {
		t.Fatalf("attempts %v, bodies %v: want 3 failures and a delivery", attempts, bodies)
	}
	for _, id := range attempts {
		if id != attempts[0] {
			t.Fatalf("retries changed the transaction ID: %v", attempts)
		}
	}
	waitQueueEmpty(t, s.n)
	// The next transaction has a new ID.
	s.send(t, "again")
	s.peer.waitFor(t, 10*time.Second, "second delivery", func(_, bodies []string) bool { return len(bodies) == 2 })
	attempts, _, _ = s.peer.snapshot()
	if attempts[4] == attempts[0] {
		t.Fatalf("a new transaction reused ID %s", attempts[0])
	}
}

func TestSenderPeerUpRetriesAtOnce(t *testing.T) {
	s := newSenderSetup(t, t.TempDir())
	s.peer.setFail(1)
	snd := s.startSender(t, SenderOptions{MinBackoff: time.Hour, MaxBackoff: time.Hour})
	s.send(t, "hello")
	s.peer.waitFor(t, 10*time.Second, "first attempt", func(a, _ []string) bool { return len(a) == 1 })
	// More work does not cut the backoff short.
	s.send(t, "more")
	time.Sleep(100 * time.Millisecond)
	if a, _, _ := s.peer.snapshot(); len(a) != 1 {
		t.Fatalf("retried during backoff: %v", a)
	}
	start := time.Now()
	snd.PeerUp(s.peer.name)
	s.peer.waitFor(t, 5*time.Second, "delivery after PeerUp", func(_, bodies []string) bool { return len(bodies) == 2 })
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("PeerUp retry took %v", d)
	}
	_, _, bodies := s.peer.snapshot()
	if !slices.Equal(bodies, []string{"hello", "more"}) {
		t.Fatalf("bodies %v", bodies)
	}
}

// TestSenderPeerUpInterruptsHungSend: a send waiting on a connection that
// died (no answer, no error) is cancelled by PeerUp and retried at once
// under the same transaction ID, rather than after its timeout.
func TestSenderPeerUpInterruptsHungSend(t *testing.T) {
	s := newSenderSetup(t, t.TempDir())
	s.peer.mu.Lock()
	s.peer.hang = 1
	s.peer.mu.Unlock()
	snd := s.startSender(t, SenderOptions{SendTimeout: time.Hour, MinBackoff: time.Hour, MaxBackoff: time.Hour})
	s.send(t, "hello")
	s.peer.waitFor(t, 10*time.Second, "first attempt", func(a, _ []string) bool { return len(a) == 1 })
	snd.PeerUp(s.peer.name)
	s.peer.waitFor(t, 10*time.Second, "delivery after PeerUp", func(_, bodies []string) bool { return len(bodies) == 1 })
	attempts, _, _ := s.peer.snapshot()
	if len(attempts) != 2 || attempts[0] != attempts[1] {
		t.Fatalf("attempts %v: want the hung one and one retry with the same ID", attempts)
	}
}

// TestSenderHonoursRetryAfter: a 429 M_LIMIT_EXCEEDED is retried after the
// retry_after_ms it gives, not after the exponential backoff (an hour here).
func TestSenderHonoursRetryAfter(t *testing.T) {
	s := newSenderSetup(t, t.TempDir())
	s.peer.mu.Lock()
	s.peer.limited = 2
	s.peer.mu.Unlock()
	s.startSender(t, SenderOptions{MinBackoff: time.Hour, MaxBackoff: time.Hour})
	s.send(t, "hello")
	s.peer.waitFor(t, 10*time.Second, "delivery after two 429s", func(_, bodies []string) bool { return len(bodies) == 1 })
	if attempts, _, _ := s.peer.snapshot(); len(attempts) != 3 {
		t.Fatalf("attempts %v: want two refused and one delivered", attempts)
	}
}

func TestSenderDeliversAfterRestart(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	n := openSenderNode(t, dir)
	peer := newFakePeer(t)
	peer.setFail(1 << 30)
	alice := n.UserID("alice")
	roomID := testnet.CreateRoom(ctx, t, n, core.CreateRoomRequest{Creator: alice, Preset: "public_chat"})
	if _, err := n.Join(ctx, "@x:"+peer.name, "DEVX", roomID); err != nil {
		t.Fatal(err)
	}
	s := senderSetup{n: n, peer: peer, roomID: roomID, alice: alice}
	rt := testnet.Routes{peer.name: peer.srv.URL}
	snd := NewSender(n, NewClient(n, rt), SenderOptions{MinBackoff: 10 * time.Millisecond, MaxBackoff: 20 * time.Millisecond})
	if err := snd.Start(ctx); err != nil {
		t.Fatal(err)
	}
	s.send(t, "one")
	s.send(t, "two")
	peer.waitFor(t, 10*time.Second, "failed attempts", func(a, _ []string) bool { return len(a) >= 2 })
	snd.Stop()
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	failed, _, _ := peer.snapshot()

	peer.setFail(0)
	n = openSenderNode(t, dir)
	defer n.Close()
	snd = NewSender(n, NewClient(n, rt), SenderOptions{MinBackoff: 10 * time.Millisecond})
	if err := snd.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer snd.Stop()
	peer.waitFor(t, 10*time.Second, "delivery after restart", func(_, bodies []string) bool { return len(bodies) >= 2 })
	attempts, _, bodies := peer.snapshot()
	if !slices.Equal(bodies, []string{"one", "two"}) {
		t.Fatalf("bodies %v", bodies)
	}
	// The first send after the restart retries the transaction in flight.
	if first := attempts[len(failed)]; first != failed[len(failed)-1] {
		t.Fatalf("after restart sent txn %s first, want the in-flight %s (attempts %v)", first, failed[len(failed)-1], attempts)
	}
	waitQueueEmpty(t, n)
}

// TestSenderDeliversEDUs: to-device messages for the peer's user go in
// transactions of EDUs only (with the "pdus" array the spec requires), at
// most 100 EDUs each, retried under the same ID, each delivered once.
func TestSenderDeliversEDUs(t *testing.T) {
	s := newSenderSetup(t, t.TempDir())
	ctx := context.Background()
	const k = 150
	for i := range k {
		err := s.n.SendToDevice(ctx, s.alice, "DEVA", "m.test", fmt.Sprint("t", i),
			map[string]map[string]json.RawMessage{"@x:" + s.peer.name: {"DEVX": json.RawMessage(`{}`)}})
		if err != nil {
			t.Fatal(err)
		}
	}
	s.peer.setFail(1)
	s.startSender(t, SenderOptions{MinBackoff: 10 * time.Millisecond})
	s.peer.waitFor(t, 20*time.Second, "all EDUs", func(_, _ []string) bool {
		s.peer.mu.Lock()
		defer s.peer.mu.Unlock()
		return len(s.peer.edus) >= k
	})
	waitQueueEmpty(t, s.n)
	s.peer.mu.Lock()
	defer s.peer.mu.Unlock()
	if len(s.peer.edus) != k || s.peer.noPDUs != 0 {
		t.Fatalf("%d EDUs delivered (want %d), %d requests without pdus", len(s.peer.edus), k, s.peer.noPDUs)
	}
	for _, typ := range s.peer.edus {
		if typ != node.EDUDirectToDevice {
			t.Fatalf("EDU types %v", s.peer.edus)
		}
	}
	for _, n := range s.peer.eduSizes {
		if n > 100 {
			t.Fatalf("transaction EDU counts %v: at most 100 each", s.peer.eduSizes)
		}
	}
	if a := s.peer.attempts; len(a) < 2 || a[0] != a[1] {
		t.Fatalf("attempts %v: the failed transaction should be retried under its ID", a)
	}
}
