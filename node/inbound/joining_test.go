package inbound

import (
	"context"
	"testing"
	"time"
)

// TestJoiningRoomsWait: wait returns false at once for a room nobody is
// joining; while a join is in progress it blocks (until its context ends
// here), and the room is released when the last of its joins ends.
func TestJoiningRoomsWait(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var j joiningRooms
	if j.wait(ctx, "!r:x") {
		t.Fatal("waited for a room nobody joins")
	}
	end1, end2 := j.begin("!r:x"), j.begin("!r:x")
	short, cancelShort := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancelShort()
	if !j.wait(short, "!r:x") || short.Err() == nil {
		t.Fatal("wait returned during a join, before its context ended")
	}
	done := j.m["!r:x"].done
	end1()
	select {
	case <-done:
		t.Fatal("released while a join was still in progress")
	default:
	}
	end2()
	select {
	case <-done:
	case <-ctx.Done():
		t.Fatal("not released after the last join ended")
	}
	if j.wait(ctx, "!r:x") {
		t.Error("waited after every join ended")
	}
}
