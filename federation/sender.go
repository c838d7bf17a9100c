package federation

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/edgenode/edgenode/node"
	"github.com/matrix-org/gomatrixserverlib"
	"github.com/matrix-org/gomatrixserverlib/fclient"
	"github.com/matrix-org/gomatrixserverlib/spec"
)

// TransactionSender sends one federation transaction; *Client is one.
type TransactionSender interface {
	SendTransaction(ctx context.Context, txn gomatrixserverlib.Transaction) (fclient.RespSend, error)
}

// SenderOptions tune a Sender; zero values take the defaults.
type SenderOptions struct {
	// MaxConcurrent bounds the destinations sent to at once (default 8).
	MaxConcurrent int
	// MaxPDUs is the most PDUs in one transaction (default and spec limit 50).
	MaxPDUs int
	// MinBackoff and MaxBackoff bound the wait after a failed send, which
	// doubles with each failure in a row (defaults 1 s and 10 min), with
	// jitter.
	MinBackoff, MaxBackoff time.Duration
	// SendTimeout bounds one transaction's request (default 60 s).
	SendTimeout time.Duration
}

func (o *SenderOptions) defaults() {
	if o.MaxConcurrent <= 0 {
		o.MaxConcurrent = 8
	}
	if o.MaxPDUs <= 0 || o.MaxPDUs > 50 {
		o.MaxPDUs = 50
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = time.Second
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = max(10*time.Minute, o.MinBackoff)
	}
	if o.SendTimeout <= 0 {
		o.SendTimeout = time.Minute
	}
}

// Sender delivers the node's outbound federation queues: one worker per
// destination with work, at most MaxConcurrent sending at once. Each worker
// sends the destination's in-flight or next transaction (node.NextTransaction:
// the ID is stored, so a retry, even after a restart, reuses it), acks it
// on success and backs off exponentially on failure. PeerUp ends a
// destination's backoff at once.
//
// A send that the remote answers with an error status is retried like a
// network failure, unless the status says the remote will not take the
// transaction as it is (refusedForContent): that transaction is then taken
// apart and the item the remote refuses dropped (refuse.go), so it cannot
// hold up the destination's queue. The per-PDU results of a successful
// send are not retried (a PDU the remote rejected would be rejected again).
type Sender struct {
	n    SenderNode
	c    TransactionSender
	opts SenderOptions
	log  *slog.Logger
	sem  chan struct{}

	mu      sync.Mutex
	ctx     context.Context
	cancel  context.CancelFunc
	dests   map[string]*destState
	wg      sync.WaitGroup
	stopped bool
}

// destState is a destination's worker state, guarded by Sender.mu.
type destState struct {
	running  bool
	failures int           // sends failed in a row
	wake     chan struct{} // new work or PeerUp, capacity 1
	// cancelSend cancels the send in flight (nil when none is); PeerUp
	// calls it and sets interrupted, so the send is retried at once.
	cancelSend  context.CancelFunc
	interrupted bool
}

// NewSender returns a sender of n's queues through c. Call Start.
func NewSender(n SenderNode, c TransactionSender, opts SenderOptions) *Sender {
	opts.defaults()
	return &Sender{
		n: n, c: c, opts: opts,
		log:   n.Logger().With("component", "federation-sender"),
		sem:   make(chan struct{}, opts.MaxConcurrent),
		dests: map[string]*destState{},
	}
}

// Start registers for new work and starts workers for the destinations that
// already have some (left from before a restart). It returns at once;
// workers run until Stop or ctx ends.
func (s *Sender) Start(ctx context.Context) error {
	s.mu.Lock()
	s.ctx, s.cancel = context.WithCancel(ctx)
	s.mu.Unlock()
	s.n.SetFederationNotify(s.queued)
	dests, err := s.n.Destinations(ctx)
	if err != nil {
		return err
	}
	s.queued(dests)
	return nil
}

// Stop stops the workers and waits for them. Queued events stay queued.
func (s *Sender) Stop() {
	s.n.SetFederationNotify(nil)
	s.mu.Lock()
	s.stopped = true
	if s.cancel != nil {
		s.cancel()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// queued is the node's notification of new work.
func (s *Sender) queued(dests []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range dests {
		s.kickLocked(d)
	}
}

// PeerUp tells the sender that a server became reachable (or connected
// anew): its backoff is reset and anything queued for it is sent at once. A
// send in flight is cancelled and retried under the same transaction ID: a
// new connection from a peer usually means it restarted, and a request
// still waiting on the old connection would wait for its timeout.
func (s *Sender) PeerUp(serverName string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st, ok := s.dests[serverName]; ok {
		st.failures = 0
		if st.cancelSend != nil {
			st.cancelSend()
			st.interrupted = true
		}
	}
	s.kickLocked(serverName)
}

// kickLocked starts dest's worker, or wakes it if it is running.
func (s *Sender) kickLocked(dest string) {
	if s.stopped || s.ctx == nil || dest == s.n.ServerName() {
		return
	}
	st, ok := s.dests[dest]
	if !ok {
		st = &destState{wake: make(chan struct{}, 1)}
		s.dests[dest] = st
	}
	if st.running {
		select {
		case st.wake <- struct{}{}:
		default:
		}
		return
	}
	st.running = true
	s.wg.Add(1)
	go s.run(s.ctx, dest, st)
}

// run sends dest's queue until it is empty or ctx ends.
func (s *Sender) run(ctx context.Context, dest string, st *destState) {
	defer s.wg.Done()
	var next *node.OutboundTxn // formed in the last ack's commit
	for {
		var err error
		next, err = s.sendOne(ctx, dest, st, next)
		if ctx.Err() != nil {
			s.exit(dest, st)
			return
		}
		if err != nil {
			s.mu.Lock()
			if st.interrupted { // by PeerUp: retry now
				st.interrupted = false
				s.mu.Unlock()
				continue
			}
			st.failures++
			delay := s.backoff(st.failures)
			if re := (*RemoteError)(nil); errors.As(err, &re) && re.RetryAfter > 0 {
				// The remote said when: no sooner, and no later either
				// (it is not down, only busy).
				st.failures--
				delay = re.RetryAfter
			}
			s.mu.Unlock()
			s.log.Info("federation send failed; will retry", "destination", dest, "in", delay, "err", err)
			if !s.waitBackoff(ctx, st, delay) {
				s.exit(dest, st)
				return
			}
			continue
		}
		s.mu.Lock()
		st.failures = 0
		if next == nil {
			select {
			case <-st.wake: // work arrived meanwhile: go round again
			default:
				st.running = false
				delete(s.dests, dest)
				s.mu.Unlock()
				return
			}
		}
		s.mu.Unlock()
	}
}

func (s *Sender) exit(dest string, st *destState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st.running = false
	delete(s.dests, dest)
}

// waitBackoff waits out a backoff delay, cut short by PeerUp (which resets
// failures); new work alone does not end it. It reports false if ctx ended.
func (s *Sender) waitBackoff(ctx context.Context, st *destState, delay time.Duration) bool {
	t := time.NewTimer(delay)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
			return true
		case <-st.wake:
			s.mu.Lock()
			reset := st.failures == 0
			s.mu.Unlock()
			if reset {
				return true
			}
		}
	}
}

// backoff is the delay after the given number of failures in a row: from
// MinBackoff, doubling, at most MaxBackoff, then jittered to 50-100%.
func (s *Sender) backoff(failures int) time.Duration {
	d := s.opts.MinBackoff
	for i := 1; i < failures && d < s.opts.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, s.opts.MaxBackoff)
	return d/2 + rand.N(d/2+1)
}

// sendOne sends txn, or dest's next transaction (PDUs, EDUs or both) if
// txn is nil, acks it, and returns the transaction to send next, formed in
// the ack's commit (nil when nothing more is queued). On error the
// transaction stays in flight, to be resent under the same ID.
func (s *Sender) sendOne(ctx context.Context, dest string, st *destState, txn *node.OutboundTxn) (*node.OutboundTxn, error) {
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-s.sem }()
	if txn == nil {
		var err error
		if txn, err = s.n.NextTransaction(ctx, dest, s.opts.MaxPDUs); err != nil || txn == nil {
			return nil, err
		}
	}
	sendCtx, cancel := context.WithTimeout(ctx, s.opts.SendTimeout)
	s.mu.Lock()
	st.cancelSend, st.interrupted = cancel, false
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		st.cancelSend = nil
		s.mu.Unlock()
		cancel()
	}()
	var edus []gomatrixserverlib.EDU
	for _, e := range txn.EDUs {
		edus = append(edus, gomatrixserverlib.EDU{Type: e.Type, Origin: s.n.ServerName(), Destination: dest, Content: spec.RawJSON(e.Content)})
	}
	pdus := txn.PDUs
	if pdus == nil {
		pdus = []json.RawMessage{} // "pdus" is required, even when only EDUs go
	}
	res, err := s.c.SendTransaction(sendCtx, gomatrixserverlib.Transaction{
		TransactionID:  gomatrixserverlib.TransactionID(txn.TxnID),
		Origin:         spec.ServerName(s.n.ServerName()),
		Destination:    spec.ServerName(dest),
		OriginServerTS: spec.AsTimestamp(time.Now()),
		PDUs:           pdus,
		EDUs:           edus,
	})
	if re, ok := refusedForContent(err); ok {
		return s.refused(ctx, dest, txn, re, err)
	}
	if err != nil {
		return nil, err
	}
	for id, r := range res.PDUs {
		if r.Error != "" {
			s.log.Warn("remote server refused an event", "destination", dest, "event_id", id, "err", r.Error)
		}
	}
	next, err := s.n.AckAndNext(ctx, dest, txn, s.opts.MaxPDUs)
	if err != nil {
		// Resent under the same ID, which the remote deduplicates.
		return nil, err
	}
	return next, nil
}
