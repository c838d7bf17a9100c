package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/edgenode/edgenode/internal/identity"
	"github.com/edgenode/edgenode/internal/testnet"
	"github.com/edgenode/edgenode/kv"
	"github.com/edgenode/edgenode/node/core"
	"github.com/matrix-org/gomatrixserverlib"
	"github.com/matrix-org/gomatrixserverlib/spec"
)

// piRSSBudget is the resident set BENCHMARKS.md ("Footprint") holds the pi
// profile to under load.
const piRSSBudget = 100 << 20

// piSoftLimit is the Go runtime's soft memory limit the command and the
// mobile facade set for the pi profile (memory.go).
func piSoftLimit(t *testing.T) int64 {
	t.Helper()
	p, err := kv.ProfileByName("pi")
	if err != nil {
		t.Fatal(err)
	}
	return memoryLimit(p, core.DefaultCacheBytes("pi"))
}

// startVictim starts an app with the pi storage profile on dir, with
// federation over libp2p QUIC on loopback; the caller closes it.
func startVictim(t *testing.T, dir string) *App {
	t.Helper()
	cfg := loopbackConfig(dir, nil)
	cfg.Node.StorageProfile = "pi"
	a, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	return a
}

// dirSize is what dir takes on disk: the blocks allocated to its files
// (Badger's tables, value log and memtable logs alike; sparse preallocated
// files count only what was written), and their apparent size.
func dirSize(t *testing.T, dir string) (allocated, apparent int64) {
	t.Helper()
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		apparent += fi.Size()
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			allocated += st.Blocks * 512
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return allocated, apparent
}

// goMemory is the Go runtime's view of the process: the live heap after
// the last collection, the memory it holds from the OS (mapped and not
// returned), and collections so far.
type goMemory struct {
	live, held, gcs uint64
}

func readGoMemory() goMemory {
	s := []metrics.Sample{
		{Name: "/gc/heap/live:bytes"},
		{Name: "/memory/classes/total:bytes"},
		{Name: "/memory/classes/heap/released:bytes"},
		{Name: "/gc/cycles/total:gc-cycles"},
	}
	metrics.Read(s)
	return goMemory{live: s[0].Value.Uint64(), held: s[1].Value.Uint64() - s[2].Value.Uint64(), gcs: s[3].Value.Uint64()}
}

// vmRSS is the process's resident set from /proc (0 where there is none).
func vmRSS() int64 {
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			var kb int64
			fmt.Sscanf(strings.TrimSpace(rest), "%d", &kb)
			return kb << 10
		}
	}
	return 0
}

// TestHostileDiskFill: M, a real libp2p peer with its own key, sends 100
// transactions of 50 signed ~19 KB messages each into a private room of A's
// it is not in (each refused by auth), pacing itself as a sender would on
// 429. A answers every PDU with an error and none reaches alice; A's data
// directory grows by less than 1 MB (measured with A closed, so Badger has
// flushed: tables, value log and memtable logs); the Go memory of the
// process falls back under the pi profile's budget within a minute; and
// after a restart the idle node does not collect garbage over and over.
func TestHostileDiskFill(t *testing.T) {
	if testing.Short() {
		t.Skip("sends 100 MB")
	}
	const txns, perTxn, bodySize = 100, 50, 19000
	oldLimit := debug.SetMemoryLimit(-1) // read only; set below
	t.Cleanup(func() { debug.SetMemoryLimit(oldLimit) })
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()

	dir := t.TempDir()
	a := startVictim(t, dir)
	alice := testnet.Register(ctx, t, a.node, "alice")
	roomID := testnet.CreateRoom(ctx, t, a.node, core.CreateRoomRequest{Creator: alice.UserID, Preset: core.PresetPrivateChat})
	closeApp(t, a)
	before, beforeApparent := dirSize(t, dir)

	a = startVictim(t, dir)
	aOpen := true
	defer func() {
		if aOpen {
			closeApp(t, a)
		}
	}()
	m := startP2P(t, quicAddrs(a))
	page, err := a.node.RoomEvents(ctx, alice.UserID, roomID, core.Range{Backwards: true, Limit: 1})
	if err != nil || len(page.Events) == 0 {
		t.Fatalf("room events: %v", err)
	}
	latest := page.Events[0].PDU
	verImpl, err := gomatrixserverlib.GetRoomVersion(latest.Version())
	if err != nil {
		t.Fatal(err)
	}
	h := hostile{m: m.node.ServerName(), a: a.node.ServerName(), key: m.node.SigningKey()}
	mallory := "@mallory:" + h.m
	pad := strings.Repeat("x", bodySize)
	buildTxn := func(k int) []json.RawMessage {
		pdus := make([]json.RawMessage, perTxn)
		for i := range pdus {
			content, _ := json.Marshal(map[string]string{"msgtype": "m.text", "body": fmt.Sprintf("%d.%d %s", k, i, pad)})
			proto := gomatrixserverlib.ProtoEvent{SenderID: mallory, RoomID: roomID, Type: "m.room.message",
				PrevEvents: []string{latest.EventID()}, AuthEvents: latest.AuthEventIDs(), Depth: latest.Depth() + 1,
				Content: spec.RawJSON(content)}
			ev, err := verImpl.NewEventBuilderFromProtoEvent(&proto).Build(time.Now(), spec.ServerName(h.m), identity.KeyID, h.key)
			if err != nil {
				t.Error(err)
				return nil
			}
			pdus[i] = ev.JSON()
		}
		return pdus
	}

	client := &http.Client{Transport: m.p2p.RoundTripper(), Timeout: 2 * time.Minute}
	var mu sync.Mutex
	var limited, refusedPDUs int
	var wrong []string
	inFlight := make(chan struct{}, 2)
	sendTxn := func(k int) {
		pdus := buildTxn(k)
		if pdus == nil {
			return
		}
		txnID := fmt.Sprintf("fill%d", k)
		signed, err := h.signed(h.m, h.key, "PUT", "/_matrix/federation/v1/send/"+txnID,
			map[string]any{"origin": h.m, "origin_server_ts": time.Now().UnixMilli(), "pdus": pdus})
		if err != nil {
			t.Error(err)
			return
		}
		body, err := io.ReadAll(signed.Body)
		if err != nil {
			t.Error(err)
			return
		}
		inFlight <- struct{}{}
		defer func() { <-inFlight }()
		for ctx.Err() == nil {
			// A retry sends the same signed request again, as a sender's
			// queue does.
			req, err := http.NewRequestWithContext(ctx, http.MethodPut, signed.URL.String(), bytes.NewReader(body))
			if err != nil {
				t.Error(err)
				return
			}
			req.Header = signed.Header.Clone()
			res, err := client.Do(req)
			if err != nil {
				mu.Lock()
				wrong = append(wrong, fmt.Sprintf("txn %d: %v", k, err))
				mu.Unlock()
				return
			}
			raw, _ := io.ReadAll(res.Body)
			res.Body.Close()
			var body struct {
				Errcode    string `json:"errcode"`
				RetryAfter int64  `json:"retry_after_ms"`
				PDUs       map[string]struct {
					Error string `json:"error"`
				} `json:"pdus"`
			}
			_ = json.Unmarshal(raw, &body)
			mu.Lock()
			switch {
			case res.StatusCode == http.StatusTooManyRequests && body.Errcode == "M_LIMIT_EXCEEDED" && body.RetryAfter > 0:
				limited++
				mu.Unlock()
				select { // as a sender would: wait as told, then retry
				case <-time.After(time.Duration(min(body.RetryAfter, 5000)) * time.Millisecond):
				case <-ctx.Done():
				}
				continue
			case res.StatusCode != http.StatusOK:
				wrong = append(wrong, fmt.Sprintf("txn %d: %d %.300s", k, res.StatusCode, raw))
			default:
				for id, r := range body.PDUs {
					if r.Error == "" {
						wrong = append(wrong, fmt.Sprintf("txn %d: PDU %s accepted", k, id))
					} else {
						refusedPDUs++
					}
				}
			}
			mu.Unlock()
			return
		}
	}
	start := time.Now()
	// Four build and sign transactions; two at a time are sent (as many
	// as A lets a stranger have in flight).
	const workers = 4
	var wg sync.WaitGroup
	for g := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := g; k < txns; k += workers {
				sendTxn(k)
			}
		}()
	}
	wg.Wait()
	for _, w := range wrong[:min(len(wrong), 10)] {
		t.Error(w)
	}
	if refusedPDUs != txns*perTxn {
		t.Errorf("A refused %d of M's %d PDUs, want all", refusedPDUs, txns*perTxn)
	}
	t.Logf("M sent %d transactions of %d PDUs in %v (%d answered 429 first)", txns, perTxn, time.Since(start).Round(time.Millisecond), limited)

	// Alice sees none of it.
	page, err = a.node.RoomEvents(ctx, alice.UserID, roomID, core.Range{Backwards: true, Limit: 1})
	if err != nil || len(page.Events) == 0 || page.Events[0].PDU.EventID() != latest.EventID() {
		t.Errorf("alice's latest event after the flood: %v, want %s", err, latest.EventID())
	}

	// The Go memory of the process (A, M and the test) falls back under
	// the pi profile's budget while idle, within a minute.
	// The pi's soft limit (StartMemoryGuard sets it) applies from here: set
	// during the flood, it made this process, which also holds M and the
	// test's own 1 MB transactions, collect garbage most of the time
	// (the flood took 40-60 s instead of 9 s).
	softLimit := uint64(piSoftLimit(t))
	debug.SetMemoryLimit(int64(softLimit))
	deadline := time.Now().Add(time.Minute)
	var mem goMemory
	for {
		mem = readGoMemory()
		if mem.live < softLimit && mem.held < piRSSBudget {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("a minute after the flood: live heap %d MiB (soft limit %d MiB), Go memory held %d MiB (budget %d MiB), RSS %d MiB",
				mem.live>>20, softLimit>>20, mem.held>>20, piRSSBudget>>20, vmRSS()>>20)
			break
		}
		select {
		case <-time.After(500 * time.Millisecond):
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		}
	}
	t.Logf("after the flood: live heap %d MiB, Go memory held %d MiB, RSS %d MiB", mem.live>>20, mem.held>>20, vmRSS()>>20)

	closeApp(t, a)
	aOpen = false
	after, afterApparent := dirSize(t, dir)
	t.Logf("data directory: %d KB allocated before, %d KB after (apparent %d KB, %d KB)", before>>10, after>>10, beforeApparent>>10, afterApparent>>10)
	if grew := after - before; grew >= 1<<20 {
		t.Errorf("data directory grew by %d KB (allocated; apparent %d KB), want under 1 MB", grew>>10, (afterApparent-beforeApparent)>>10)
	}

	// After a restart the idle node stays under the soft limit and does
	// not collect garbage over and over.
	a = startVictim(t, dir)
	aOpen = true
	runtime.GC()
	m0, t0 := readGoMemory(), time.Now()
	select {
	case <-time.After(5 * time.Second): // a measuring window, not a wait for anything
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	}
	m1 := readGoMemory()
	rate := float64(m1.gcs-m0.gcs) / time.Since(t0).Seconds()
	t.Logf("after a restart: live heap %d MiB, %.1f collections/s while idle", m1.live>>20, rate)
	if m1.live >= softLimit || rate > 2 {
		t.Errorf("after a restart: live heap %d MiB (soft limit %d MiB), %.1f collections/s while idle", m1.live>>20, softLimit>>20, rate)
	}
}

// TestHostileUnjoinedRoom: after A's only user left a room, B, still a
// member, keeps sending A signed messages in it, each allowed by the
// room's auth rules. A takes none of them in (a room no local user is in
// is nobody's here; they would only take disk), and it still answers the
// transaction 200.
func TestHostileUnjoinedRoom(t *testing.T) {
	a, b := startPair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	r := sharedRoom(ctx, t, a, b)
	if status, body := call(t, a, "POST", "/_matrix/client/v3/rooms/"+r.roomID+"/leave", r.alice.AccessToken, map[string]any{}); status != http.StatusOK {
		t.Fatalf("alice's leave: %d %v", status, body)
	}
	leave, err := a.node.Membership(ctx, r.roomID, r.alice.UserID)
	if err != nil || leave.Membership != spec.Leave {
		t.Fatalf("alice's membership: %+v, %v", leave, err)
	}
	bobJoin, err := b.node.Membership(ctx, r.roomID, r.bob.UserID)
	if err != nil {
		t.Fatal(err)
	}
	leaveEv, err := a.node.Event(ctx, r.alice.UserID, leave.EventID)
	if err != nil {
		t.Fatal(err)
	}
	auth := []string{bobJoin.EventID}
	for _, id := range leaveEv.PDU.AuthEventIDs() {
		ev, err := a.node.Event(ctx, r.alice.UserID, id)
		if err != nil {
			t.Fatal(err)
		}
		if typ := ev.PDU.Type(); typ == spec.MRoomCreate || typ == spec.MRoomPowerLevels {
			auth = append(auth, id)
		}
	}
	verImpl, err := gomatrixserverlib.GetRoomVersion(leaveEv.PDU.Version())
	if err != nil {
		t.Fatal(err)
	}
	h := hostile{m: b.node.ServerName(), a: a.node.ServerName(), key: b.node.SigningKey()}
	pdus := make([]json.RawMessage, 20)
	for i := range pdus {
		proto := gomatrixserverlib.ProtoEvent{SenderID: r.bob.UserID, RoomID: r.roomID, Type: "m.room.message",
			PrevEvents: []string{leave.EventID}, AuthEvents: auth, Depth: leaveEv.PDU.Depth() + 1,
			Content: spec.RawJSON(fmt.Sprintf(`{"msgtype":"m.text","body":"after you left %d %s"}`, i, strings.Repeat("x", 10000)))}
		ev := testnet.SignPDU(t, verImpl, proto, time.Now(), h.m, h.key)
		pdus[i] = ev.JSON()
	}
	req, err := h.signed(h.m, h.key, "PUT", "/_matrix/federation/v1/send/afterleave",
		map[string]any{"origin": h.m, "origin_server_ts": time.Now().UnixMilli(), "pdus": pdus})
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: b.p2p.RoundTripper(), Timeout: time.Minute}
	res, err := client.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var body struct {
		PDUs map[string]struct {
			Error string `json:"error"`
		} `json:"pdus"`
	}
	raw, _ := io.ReadAll(res.Body)
	if err := json.Unmarshal(raw, &body); err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("/send: %d %s", res.StatusCode, raw)
	}
	for id, r := range body.PDUs {
		if r.Error == "" {
			t.Errorf("A took in %s, in a room none of its users is in", id)
		}
	}
}
