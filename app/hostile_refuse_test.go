package app

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgenode/edgenode/internal/testnet"
	"github.com/edgenode/edgenode/p2ptransport"
)

// TestHostileReceiverRefusingEverythingLosesNothing: a peer that answers
// every transaction with a 401 (B's key in the hands of a server that
// refuses all, or B with a fault) makes A's sender take its transaction
// apart and try an empty one; since that is refused too, nothing is
// dropped (the single event is retried after the backoff): when the real B is back, every queued message arrives. It
// guards the drop of a refused event (TestOutboundQueueDropsRefusedEvent)
// against becoming a way to lose a whole queue.
func TestHostileReceiverRefusingEverythingLosesNothing(t *testing.T) {
	a := startStoppable(t, t.TempDir(), nil)
	b := startStoppable(t, t.TempDir(), quicAddrs(a.App))
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	rp := sharedRoom(ctx, t, a.App, b.App)
	bName, bKey := b.node.ServerName(), b.node.SigningKey()
	b.stop()

	// The impostor: B's libp2p identity, refusing everything.
	host, err := p2ptransport.New(ctx, p2ptransport.Config{
		PrivateKey: bKey, ListenAddrs: []string{"/ip4/127.0.0.1/udp/0/quic-v1"}, Profile: "phone",
		StaticPeers: quicAddrs(a.App), Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var seen []int // PDUs per /send refused
	retried := make(chan struct{})
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/_matrix/federation/v1/send/") {
			var txn struct {
				PDUs []json.RawMessage `json:"pdus"`
			}
			_ = json.NewDecoder(r.Body).Decode(&txn)
			mu.Lock()
			seen = append(seen, len(txn.PDUs))
			// A single event again after an empty transaction: the
			// sender has had its chance to drop the first and has not
			// (or it would be at the next).
			if probe := slices.Index(seen, 0); probe > 0 && len(txn.PDUs) == 1 && seen[probe-1] == 1 && len(seen)-1 > probe {
				select {
				case <-retried:
				default:
					close(retried)
				}
			}
			mu.Unlock()
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"errcode":"M_UNAUTHORIZED","error":"refused"}`))
	})}
	go func() { _ = srv.Serve(host.Listener()) }()
	stopImpostor := sync.OnceFunc(func() {
		_ = srv.Close()
		_ = host.Close()
	})
	defer stopImpostor()

	var sent []string
	for i := range 4 {
		id := testnet.SendText(ctx, t, a.node, rp.alice.UserID, rp.alice.DeviceID, rp.roomID, fmt.Sprintf("queued %d", i))
		sent = append(sent, id)
	}
	select {
	case <-retried:
	case <-ctx.Done():
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("A never retried a single event after an empty transaction; PDUs per refused /send: %v", seen)
	}
	queued, _, _, err := a.node.PendingPDUs(ctx, bName, 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range sent {
		if !slices.Contains(queued, id) {
			t.Fatalf("A dropped %s from B's queue although B refuses every request (queued: %v)", id, queued)
		}
	}
	stopImpostor()

	b.start(quicAddrs(a.App))
	for _, id := range sent {
		wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
		waitForEvent(wctx, t, b.App, rp.bob.UserID, rp.roomID, id)
		wcancel()
	}
	mu.Lock()
	defer mu.Unlock()
	t.Logf("PDUs per /send the impostor refused: %v", seen)
}
