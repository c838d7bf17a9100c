package simulation

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
)

// Options configure Run.
type Options struct {
	// Mode is ModeMocknet (default) or ModeQUIC.
	Mode string
	// Seed makes the traffic (who sends where, which events are sticky)
	// repeatable; timing still varies run to run.
	Seed uint64
	// Dir holds the nodes' data directories; a temporary directory,
	// removed afterwards, if empty.
	Dir string
	// Logger receives the harness's and the nodes' logs; nodes log at
	// Warn and above only when nil.
	Logger *slog.Logger
}

// Run starts the scenario's nodes, drives them through it, checks
// convergence and returns the report. An error means the run could not be
// carried out; a run whose network did not converge returns a Report with
// Passed false.
func Run(ctx context.Context, s Scenario, o Options) (*Report, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	var net netMode
	switch o.Mode {
	case "", ModeMocknet:
		o.Mode = ModeMocknet
		net = newMockNetwork(s)
	case ModeQUIC:
		net = quicNetwork{}
	default:
		return nil, fmt.Errorf("unknown mode %q", o.Mode)
	}
	dir := o.Dir
	if dir == "" {
		d, err := os.MkdirTemp("", "edgesim-")
		if err != nil {
			return nil, fmt.Errorf("data directory: %w", err)
		}
		defer os.RemoveAll(d)
		dir = d
	}
	rep := &Report{Scenario: s, Mode: o.Mode, Seed: o.Seed, StartedAt: time.Now().UTC()}
	rep.Memory.BaselineHeapBytes = heapBytes()
	rec := newRecorder()
	rec.start = time.Now()
	c := newCluster(s, net, rec, log, dir)
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		if err := c.stopAll(cctx); err != nil {
			log.Warn("stopping nodes", "err", err)
		}
		if err := net.close(); err != nil {
			log.Warn("closing network", "err", err)
		}
	}()
	if err := c.setup(ctx); err != nil {
		return nil, err
	}
	rec.restart()
	log.Info("setup done; traffic starts", "scenario", s.Name, "nodes", s.Nodes, "setup", time.Since(rep.StartedAt).Round(time.Millisecond))

	sctx, stopSampling := context.WithCancel(ctx)
	var samplerDone sync.WaitGroup
	samplerDone.Go(func() { c.sample(sctx, rep) })

	st := &trafficStats{}
	var stepErr error
	var phase sync.WaitGroup
	phase.Go(func() { c.traffic(ctx, rand.New(rand.NewPCG(o.Seed, 0x5ee0)), st) })
	phase.Go(func() { stepErr = c.runSteps(ctx) })
	phase.Wait()
	if err := ctx.Err(); err != nil {
		stopSampling()
		samplerDone.Wait()
		return nil, err
	}
	trafficEnd := rec.since()
	v, err := c.converge(ctx, trafficEnd)
	stopSampling()
	samplerDone.Wait()
	if err != nil {
		return nil, err
	}
	c.finish(rep, v, st, trafficEnd, stepErr)
	return rep, nil
}

// setup starts the nodes, creates the rooms and joins every node but the
// late joiners.
func (c *cluster) setup(ctx context.Context) error {
	for i := range c.nodes {
		if err := c.start(ctx, i); err != nil {
			return err
		}
	}
	if err := c.createRooms(ctx); err != nil {
		return err
	}
	late := map[int]bool{}
	for _, i := range c.s.LateJoiners {
		late[i] = true
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8) // joins are CPU-bound (signatures, state); more only queue
	for i := range c.nodes {
		if !late[i] {
			g.Go(func() error { return c.join(gctx, i, false) })
		}
	}
	if err := g.Wait(); err != nil {
		return err
	}
	return c.settleRooms(ctx)
}

// converge polls (bounded by the scenario's Settle) until every expected
// event is at its node and the rooms' members agree.
func (c *cluster) converge(ctx context.Context, trafficEnd time.Duration) (verdict, error) {
	deadline := time.Now().Add(c.s.Settle)
	for {
		v, err := c.check(ctx)
		if err != nil {
			return v, err
		}
		if v.ok() || time.Now().After(deadline) {
			v.at = c.rec.since() - trafficEnd
			return v, nil
		}
		if err := pause(ctx, 500*time.Millisecond); err != nil {
			return v, err
		}
	}
}

// sample records a timeline point every second until ctx is done.
func (c *cluster) sample(ctx context.Context, rep *Report) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var samples []Sample
	defer func() { rep.Timeline = samples }()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		s := Sample{T: c.rec.since().Seconds(), Delivered: 1, HeapBytes: heapBytes()}
		exps := c.rec.expected(time.Now())
		if len(exps) > 0 {
			got := 0
			for _, e := range exps {
				if _, ok := c.rec.arrival(e.ev.ID, e.node); ok {
					got++
				}
			}
			s.Delivered = float64(got) / float64(len(exps))
		}
		running := c.running()
		agreeing := 0
		for r := range c.roomIDs {
			if same, _, err := c.agree(ctx, r, running); err == nil && same {
				agreeing++
			}
		}
		s.RoomsAgreeing = float64(agreeing) / float64(max(1, len(c.roomIDs)))
		samples = append(samples, s)
	}
}

// finish fills the report from the recorder and the final verdict.
func (c *cluster) finish(rep *Report, v verdict, st *trafficStats, trafficEnd time.Duration, stepErr error) {
	rec := c.rec
	rec.mu.Lock()
	for _, e := range rec.sent {
		if e.Sticky {
			rep.Sent.Sticky++
		} else {
			rep.Sent.Messages++
		}
	}
	rep.Steps = rec.steps
	rec.mu.Unlock()
	rep.Sent.SendErrors, rep.Sent.Skipped = st.errors.Load(), st.skipped.Load()

	var lat, late []float64
	d := &rep.Delivery
	for _, e := range rec.expected(time.Now()) {
		d.Expected++
		if e.preJoinSticky {
			rep.StickyLate.Expected++
		}
		at, ok := rec.arrival(e.ev.ID, e.node)
		if !ok {
			continue
		}
		d.Delivered++
		ms := float64(max(0, at-e.from)) / float64(time.Millisecond)
		if e.preJoinSticky {
			rep.StickyLate.Delivered++
			late = append(late, ms)
		} else {
			lat = append(lat, ms)
		}
	}
	d.Missing, d.MissingSticky, d.MissingPreJoinSticky = v.missing, v.missingSticky, v.missingPreJoinSticky
	d.SeenBySync = d.Delivered - int(c.foundInStore.Load())
	if d.Expected > 0 {
		d.Completeness = float64(d.Delivered) / float64(d.Expected)
	}
	if rep.StickyLate.Expected > 0 {
		rep.StickyLate.Completeness = float64(rep.StickyLate.Delivered) / float64(rep.StickyLate.Expected)
	}
	rep.Latency, rep.StickyLate.Latency, rep.latencies = distribution(lat), distribution(late), lat

	rep.Convergence = ConvergenceStats{Converged: v.ok(), SecondsAfterTraffic: v.at.Seconds(), RoomsDisagreeing: len(v.disagreeing),
		Problems: append(v.disagreeing, v.details...)}
	if !v.ok() {
		rep.Failures = append(rep.Failures, fmt.Sprintf("not converged %.0fs after traffic ended: %d expected events missing (%d sticky, %d of them sticky events sent before their node joined), %d rooms disagree",
			c.s.Settle.Seconds(), v.missing, v.missingSticky, v.missingPreJoinSticky, len(v.disagreeing)))
		if v.missingPreJoinSticky > 0 {
			rep.Failures = append(rep.Failures, "sticky events sent before a late joiner joined did not reach it: that needs the MSC4354 push of unexpired sticky events to newly joined servers")
		}
	}
	if stepErr != nil {
		rep.Failures = append(rep.Failures, stepErr.Error())
	}
	rep.Passed = len(rep.Failures) == 0

	for _, n := range c.nodes {
		rep.Nodes = append(rep.Nodes, NodeStats{Index: n.idx, ServerName: n.server, Rooms: n.rooms, Starts: n.starts,
			Traffic: c.net.traffic(n.idx), DiskBytes: dirSize(n.dir)})
	}
	m := &rep.Memory
	m.PeakRSSBytes = peakRSS()
	for _, s := range rep.Timeline {
		m.PeakHeapBytes = max(m.PeakHeapBytes, s.HeapBytes)
	}
	if m.PeakHeapBytes > m.BaselineHeapBytes {
		m.PerNodeHeapApprox = (m.PeakHeapBytes - m.BaselineHeapBytes) / uint64(c.s.Nodes)
	}
	m.Note = "all nodes share one process: per-node heap is (peak - baseline) / nodes, sampled once a second; peak RSS is the process's VmHWM; disk_bytes per node is its Badger directory"
	rep.WallSeconds = time.Since(rep.StartedAt).Seconds()
}
