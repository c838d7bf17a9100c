package app

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/edgenode/edgenode/internal/testnet"
)

// nextHealth waits (bounded) for the next health event.
func nextHealth(t *testing.T, events <-chan HealthEvent) HealthEvent {
	t.Helper()
	select {
	case ev := <-events:
		return ev
	case <-time.After(30 * time.Second):
		t.Fatal("no health event within 30 s")
		return HealthEvent{}
	}
}

// TestClientListenerDiesAndRebinds: the client API's listener failing (as
// when iOS reclaims a suspended app's sockets; here it is closed under the
// server) makes the app unhealthy and the base URL stop answering;
// RebindClient listens again on the same address, the app is healthy
// again and the base URL answers, without the database or anything else
// being reopened.
func TestClientListenerDiesAndRebinds(t *testing.T) {
	events := make(chan HealthEvent, 16)
	a, err := Start(context.Background(), Config{
		ClientListen: "127.0.0.1:0", Node: testnet.FastNodeConfig(t.TempDir()),
		OnHealth: func(ev HealthEvent) { events <- ev },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer closeApp(t, a)
	base := a.BaseURL()
	versions := func() error {
		resp, err := http.Get(base + "/_matrix/client/versions")
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	}
	if err := versions(); err != nil {
		t.Fatal(err)
	}
	if ok, why := a.Healthy(); !ok {
		t.Fatalf("unhealthy at start: %s", why)
	}
	nodeBefore := a.node

	a.client.mu.Lock()
	_ = a.client.cur.ln.Close()
	a.client.mu.Unlock()
	ev := nextHealth(t, events)
	if ev.Healthy || ev.Stopped || !strings.Contains(ev.Reason, "client API listener failed") {
		t.Fatalf("after the listener died: %+v", ev)
	}
	if ok, _ := a.Healthy(); ok {
		t.Fatal("Healthy with the client API down")
	}
	if err := versions(); err == nil {
		t.Fatal("the base URL answers with its listener closed")
	}

	if err := a.RebindClient(context.Background()); err != nil {
		t.Fatal(err)
	}
	if ev := nextHealth(t, events); !ev.Healthy {
		t.Fatalf("after RebindClient: %+v", ev)
	}
	if a.BaseURL() != base {
		t.Fatalf("base URL moved: %s -> %s", base, a.BaseURL())
	}
	if err := versions(); err != nil {
		t.Fatalf("after RebindClient: %v", err)
	}
	if a.node != nodeBefore || !a.Running() {
		t.Fatal("RebindClient replaced the node")
	}
	// A rebind of a healthy listener changes nothing visible either.
	if err := a.RebindClient(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := versions(); err != nil || a.BaseURL() != base {
		t.Fatalf("second rebind: %v, %s", err, a.BaseURL())
	}
}

// TestLowDiskSpaceUnhealthy: with less free space than the node's
// threshold (here a threshold above any disk's size), the app reports
// itself unhealthy, naming the free space, and keeps running.
func TestLowDiskSpaceUnhealthy(t *testing.T) {
	events := make(chan HealthEvent, 16)
	cfg := testnet.FastNodeConfig(t.TempDir())
	cfg.LowDiskSpace = 1 << 62
	a, err := Start(context.Background(), Config{
		ClientListen: "127.0.0.1:0", Node: cfg,
		OnHealth: func(ev HealthEvent) { events <- ev },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer closeApp(t, a)
	ev := nextHealth(t, events)
	if ev.Healthy || ev.Stopped || !strings.Contains(ev.Reason, "MiB free") {
		t.Fatalf("with the disk under the threshold: %+v", ev)
	}
	if ok, why := a.Healthy(); ok || !a.Running() || !strings.Contains(why, "MiB free") {
		t.Fatalf("Healthy %v %q, Running %v", ok, why, a.Running())
	}
}
