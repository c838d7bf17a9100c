package node

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/edgenode/edgenode/node/core"
)

func TestTyping(t *testing.T) {
	ctx := context.Background()
	n := fastNode(t)
	alice, bob, carol := session(n, "alice"), session(n, "bob"), session(n, "carol")
	room := sharedRoom(t, n, alice, bob)
	sharedRoom(t, n, carol)

	steps := []struct {
		name    string
		user    Session
		typing  bool
		want    []string // typists after the step
		moves   bool     // whether the room's position changes
		wantErr error
	}{
		{"alice starts", alice, true, []string{alice.UserID}, true, nil},
		{"alice again: a renewal nobody sees", alice, true, []string{alice.UserID}, false, nil},
		{"bob starts", bob, true, []string{alice.UserID, bob.UserID}, true, nil},
		{"alice stops", alice, false, []string{bob.UserID}, true, nil},
		{"alice stops again", alice, false, []string{bob.UserID}, false, nil},
		{"carol is not in the room", carol, true, []string{bob.UserID}, false, core.ErrNotJoined},
		{"bob stops", bob, false, []string{}, true, nil},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			_, before := n.Typing(room)
			ls := listeners(t, n, alice, bob, carol)
			err := n.SetTyping(ctx, st.user.UserID, room, st.typing, 30*time.Second)
			if !errors.Is(err, st.wantErr) {
				t.Fatalf("got %v, want %v", err, st.wantErr)
			}
			users, pos := n.Typing(room)
			if !slices.Equal(users, st.want) && len(users)+len(st.want) > 0 {
				t.Errorf("typists %v, want %v", users, st.want)
			}
			if moved := pos != before; moved != st.moves {
				t.Errorf("position %d -> %d; want a change: %v", before, pos, st.moves)
			}
			if pos > n.TypingPosition() {
				t.Errorf("room position %d beyond the stream's %d", pos, n.TypingPosition())
			}
			if st.moves {
				checkWoken(t, ls, alice, bob) // the room's members, never carol
			} else {
				checkWoken(t, ls)
			}
		})
	}
	t.Run("unknown room", func(t *testing.T) {
		if err := n.SetTyping(ctx, alice.UserID, "!nope:"+n.ServerName(), true, time.Second); !errors.Is(err, core.ErrNotFound) {
			t.Errorf("got %v, want ErrNotFound", err)
		}
	})
}

func TestTypingExpires(t *testing.T) {
	ctx := context.Background()
	n := fastNode(t)
	alice, bob := session(n, "alice"), session(n, "bob")
	room := sharedRoom(t, n, alice, bob)
	if err := n.SetTyping(ctx, alice.UserID, room, true, time.Minute); err != nil {
		t.Fatal(err)
	}
	lb := n.Listen(bob.UserID)
	defer lb.Close()
	if err := n.SetTyping(ctx, bob.UserID, room, true, 20*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	_, started := n.Typing(room)
	// Bob's own start woke him; then wait, bounded, for his typing to expire.
	deadline, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		users, pos := n.Typing(room)
		if pos > started {
			if !slices.Equal(users, []string{alice.UserID}) {
				t.Fatalf("after bob's expiry typists are %v", users)
			}
			break
		}
		if !lb.Wait(deadline) {
			t.Fatal("bob's typing did not expire")
		}
	}
	if len(n.typing.rooms[room].users) != 1 {
		t.Errorf("expired typist still held in memory")
	}
}

func TestTypingMemoryBounded(t *testing.T) {
	ctx := context.Background()
	n := fastNode(t)
	clock := newFakeClock()
	n.Now = clock.now
	alice := session(n, "alice")
	rooms := []string{sharedRoom(t, n, alice), sharedRoom(t, n, alice)}
	for _, r := range rooms {
		if err := n.SetTyping(ctx, alice.UserID, r, true, time.Hour); err != nil { // capped
			t.Fatal(err)
		}
	}
	quiet := sharedRoom(t, n, alice)
	_, quietBefore := n.Typing(quiet)
	if err := n.SetTyping(ctx, alice.UserID, rooms[1], false, 0); err != nil {
		t.Fatal(err)
	}
	_, stopPos := n.Typing(rooms[1])

	// The timeout was capped: past MaxTypingTimeout, alice no longer types.
	clock.advance(MaxTypingTimeout)
	n.sweepTyping()
	users, expiredPos := n.Typing(rooms[0])
	if len(users) != 0 {
		t.Fatalf("typists %v after the capped timeout", users)
	}
	if len(n.typing.rooms) != 2 {
		t.Errorf("%d room entries within the grace period, want 2", len(n.typing.rooms))
	}
	// After the grace period, empty rooms are forgotten; they then report
	// the latest dropped position, so a reader that saw someone typing
	// still learns that nobody is.
	clock.advance(typingGrace)
	n.sweepTyping()
	if len(n.typing.rooms) != 0 {
		t.Errorf("%d room entries left after the grace period", len(n.typing.rooms))
	}
	for _, r := range rooms {
		if users, pos := n.Typing(r); len(users) != 0 || pos != expiredPos || pos <= stopPos {
			t.Errorf("forgotten room: %v at %d, want nobody at %d", users, pos, expiredPos)
		}
	}
	if _, pos := n.Typing(quiet); pos <= quietBefore {
		t.Errorf("a quiet room's position %d did not pass the forgotten changes", pos)
	}
	if n.typing.timer != nil && !n.typing.due.IsZero() {
		t.Errorf("timer still armed for %v with nothing to do", n.typing.due)
	}
}

func TestTypingPositionsGrowAcrossRestarts(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t.TempDir())
	cfg.NoSyncWrites = true
	var last uint64
	for run := range 3 {
		n := openNode(t, cfg)
		alice := session(n, "alice")
		if start := n.TypingPosition(); start <= last {
			t.Errorf("run %d starts at %d, not after %d", run, start, last)
		}
		var room string
		if run == 0 {
			room = sharedRoom(t, n, alice)
		} else {
			rooms, _ := n.JoinedRooms(ctx, alice.UserID)
			room = rooms[0]
			// Whoever typed before the restart is gone, and a reader from
			// before it learns so.
			if users, pos := n.Typing(room); len(users) != 0 || pos <= last {
				t.Errorf("run %d: %v at %d, want nobody after %d", run, users, pos, last)
			}
		}
		if err := n.SetTyping(ctx, alice.UserID, room, true, time.Minute); err != nil {
			t.Fatal(err)
		}
		last = n.TypingPosition()
		if err := n.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
