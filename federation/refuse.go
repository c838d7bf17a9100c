package federation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/edgenode/edgenode/node"
	"github.com/matrix-org/gomatrixserverlib"
	"github.com/matrix-org/gomatrixserverlib/spec"
)

// refusedForContent reports whether err is a destination's answer that it
// will not take a transaction as it is, whenever it is sent: a 4xx status
// other than those about load or timing (408, 425, 429) or a missing
// endpoint (404, 405). An X-Matrix check that fails on the body (401), a
// body over the size limit (413) and a malformed one (400) are such
// answers. Transport errors and 5xx are not: those are retried.
func refusedForContent(err error) (*RemoteError, bool) {
	var re *RemoteError
	if err == nil || !errors.As(err, &re) || re.Status < 400 || re.Status >= 500 {
		return nil, false
	}
	switch re.Status {
	case http.StatusRequestTimeout, http.StatusTooEarly, http.StatusTooManyRequests,
		http.StatusNotFound, http.StatusMethodNotAllowed:
		return nil, false
	}
	return re, true
}

// refused handles dest's refusal (re, within err) of txn for its content
// and returns the transaction to send next. A transaction of several items
// is halved (node.ShrinkTransaction) and its first half sent next. A
// single item is dropped, with a warning naming it and the answer, but
// only once an empty transaction to dest goes through: a destination that
// refuses every request (say, our signatures) would otherwise have every
// queued event dropped one by one. If the empty one fails too, err is
// returned and the item retried after the backoff, like any failure.
func (s *Sender) refused(ctx context.Context, dest string, txn *node.OutboundTxn, re *RemoteError, err error) (*node.OutboundTxn, error) {
	if items := len(txn.PDUs) + len(txn.EDUs); items > 1 {
		s.log.Info("destination refused a transaction; sending it in halves to find what it refuses",
			"destination", dest, "txn_id", txn.TxnID, "pdus", len(txn.PDUs), "edus", len(txn.EDUs),
			"status", re.Status, "errcode", re.Code, "error", re.Message)
		return s.n.ShrinkTransaction(ctx, dest, txn, s.opts.MaxPDUs)
	}
	if perr := s.probe(ctx, dest); perr != nil {
		return nil, fmt.Errorf("%w (an empty transaction failed too: %w)", err, perr)
	}
	for _, id := range txn.EventIDs {
		s.log.Warn("dropping an event the destination refuses", "destination", dest, "event_id", id,
			"status", re.Status, "errcode", re.Code, "error", re.Message)
	}
	for _, e := range txn.EDUs {
		s.log.Warn("dropping an EDU the destination refuses", "destination", dest, "edu_type", e.Type,
			"status", re.Status, "errcode", re.Code, "error", re.Message)
	}
	return s.n.AckAndNext(ctx, dest, txn, s.opts.MaxPDUs)
}

// probe sends dest a transaction with nothing in it, under an ID of its
// own, to tell a refusal of one item from a refusal of every request.
func (s *Sender) probe(ctx context.Context, dest string) error {
	ctx, cancel := context.WithTimeout(ctx, s.opts.SendTimeout)
	defer cancel()
	_, err := s.c.SendTransaction(ctx, gomatrixserverlib.Transaction{
		TransactionID:  gomatrixserverlib.TransactionID(fmt.Sprintf("probe-%d-%08x", time.Now().UnixMilli(), rand.Uint32())),
		Origin:         spec.ServerName(s.n.ServerName()),
		Destination:    spec.ServerName(dest),
		OriginServerTS: spec.AsTimestamp(time.Now()),
		PDUs:           []json.RawMessage{},
	})
	return err
}
