package simulation

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// runSteps runs the scenario's steps at their times, in order.
func (c *cluster) runSteps(ctx context.Context) error {
	var errs []error
	for _, st := range c.s.Steps {
		if err := pause(ctx, st.At-c.rec.since()); err != nil {
			return err
		}
		at := c.rec.since()
		err := c.step(ctx, st)
		l := StepLog{Step: st, StartedAt: at.Seconds(), TookMS: float64(c.rec.since()-at) / float64(time.Millisecond)}
		if err != nil {
			l.Error = err.Error()
			errs = append(errs, fmt.Errorf("step %s at %v: %w", st.Action, st.At, err))
		}
		c.rec.logStep(l)
		c.log.Info("step", "action", st.Action, "nodes", st.Nodes, "at", at.Round(time.Millisecond), "err", err)
	}
	return errors.Join(errs...)
}

func (c *cluster) step(ctx context.Context, st Step) error {
	switch st.Action {
	case StepPartition:
		return c.net.partition(st.Nodes, c.running())
	case StepHeal:
		return c.net.heal(ctx, c.running())
	case StepStop:
		var errs []error
		for _, i := range st.Nodes {
			errs = append(errs, c.stop(ctx, i))
		}
		return errors.Join(errs...)
	case StepStart:
		var errs []error
		for _, i := range st.Nodes {
			errs = append(errs, c.start(ctx, i))
		}
		return errors.Join(errs...)
	case StepJoin:
		var errs []error
		for _, i := range st.Nodes {
			errs = append(errs, c.join(ctx, i, true))
		}
		return errors.Join(errs...)
	}
	return fmt.Errorf("unknown step %q", st.Action)
}
