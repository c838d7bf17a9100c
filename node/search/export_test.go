package search

import "context"

// SetMaxScan makes s's scan budget small, so a test reaches it with a few
// messages.
func SetMaxScan(s *Search, n int) { s.maxScan = n }

// CatchUpTxns runs the catch-up walk for at most n transactions (all when
// n is negative) of at most events timeline events, as a node that crashes
// after them would.
func CatchUpTxns(ctx context.Context, s *Search, n, events int) error {
	s.catchUpEvents = events
	return s.catchUp(ctx, n)
}
