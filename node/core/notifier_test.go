package core

import (
	"context"
	"testing"
	"time"
)

// wakes reports whether l wakes within d; a short d is only used where
// the answer must be "no", so a slow machine cannot make the test flaky.
func wakes(l *Listener, d time.Duration) bool {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return l.Wait(ctx)
}

func TestNotifierWakesOnlyRoomMembers(t *testing.T) {
	ctx := context.Background()
	n := newTestNode(t)
	alice, bob, carol := session(n, "alice"), session(n, "bob"), session(n, "carol")
	roomID, err := n.CreateRoom(ctx, CreateRoomRequest{Creator: alice.UserID, Preset: PresetPublicChat})
	if err != nil {
		t.Fatal(err)
	}
	membership(t, n, bob, roomID, bob.UserID, "join")

	lb, lc := n.Listen(bob.UserID), n.Listen(carol.UserID)
	defer lb.Close()
	defer lc.Close()
	send(t, n, alice, roomID, "hello")
	if !wakes(lb, 30*time.Second) {
		t.Fatal("bob, a member, was not woken by a message in his room")
	}
	if wakes(lc, 50*time.Millisecond) {
		t.Fatal("carol, not a member, was woken")
	}

	// An invite wakes its target.
	membership(t, n, alice, roomID, carol.UserID, "invite")
	if !wakes(lc, 30*time.Second) {
		t.Fatal("carol was not woken by her invite")
	}
}

func TestListenerCloseDropsEntry(t *testing.T) {
	n := newTestNode(t)
	l1, l2 := n.Listen("@a:x"), n.Listen("@a:x")
	l1.Close()
	if len(n.Notifier.users) != 1 {
		t.Fatalf("entry dropped while a listener remains")
	}
	l2.Close()
	if len(n.Notifier.users) != 0 {
		t.Fatalf("%d entries left after all listeners closed", len(n.Notifier.users))
	}
}

func TestBeginShutdownEndsWaits(t *testing.T) {
	n := newTestNode(t)
	l := n.Listen("@a:x")
	defer l.Close()
	done := make(chan bool, 1)
	go func() { done <- l.Wait(context.Background()) }()
	n.BeginShutdown()
	select {
	case changed := <-done:
		if changed {
			t.Fatal("Wait reported a change at shutdown")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("a waiting listener did not return at shutdown")
	}
	if wakes(l, time.Hour) {
		t.Fatal("Wait after shutdown reported a change")
	}
}
