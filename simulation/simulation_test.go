package simulation

import (
	"context"
	"testing"
	"time"
)

func TestBuiltinsValid(t *testing.T) {
	for _, name := range BuiltinNames() {
		s, err := Builtin(name)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Validate(); err != nil {
			t.Error(err)
		}
		for _, i := range s.LateJoiners {
			for r := range s.Rooms {
				if s.creator(r) == i {
					t.Errorf("%s: late joiner %d creates room %d", name, i, r)
				}
			}
		}
	}
	if _, err := Builtin("nope"); err == nil {
		t.Error("unknown scenario accepted")
	}
}

// TestCI5 runs the ci-5 scenario on mocknet: a partition that heals and a
// late joiner with sticky events. Every event must reach every joined
// node and the nodes must agree on each room's forward extremities and
// state, within the scenario's bounds (about a minute).
func TestCI5(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-node simulation (about a minute)")
	}
	s, err := Builtin("ci-5")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	rep, err := Run(ctx, s, Options{Seed: 1, Dir: t.TempDir()})
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	t.Logf("\n%s", Summary(rep))
	d := rep.Delivery
	if d.Expected == 0 || rep.Sent.Messages == 0 || rep.Sent.Sticky == 0 {
		t.Fatalf("nothing to check: %+v %+v", rep.Sent, d)
	}
	if n := d.Missing - d.MissingPreJoinSticky; n > 0 {
		t.Errorf("%d events (%d sticky) missing at joined nodes: %v", n, d.MissingSticky-d.MissingPreJoinSticky, rep.Convergence.Problems)
	}
	if rep.Convergence.RoomsDisagreeing > 0 {
		t.Errorf("rooms disagree: %v", rep.Convergence.Problems)
	}
	if d.MissingPreJoinSticky > 0 {
		t.Errorf("%d unexpired sticky events sent before the late joiner joined never reached it", d.MissingPreJoinSticky)
	}
	if rep.StickyLate.Expected == 0 {
		t.Error("the late joiner was owed no sticky events: the scenario does not test what it should")
	}
	for _, st := range rep.Steps {
		if st.Error != "" {
			t.Errorf("step %s at %v: %s", st.Action, st.At, st.Error)
		}
	}
}
