package search

import "context"

// SetMaxScan makes s's scan budget small, so a test reaches it with a few
// messages.
func SetMaxScan(s *Search, n int) { s.maxScan = n }

// CatchUpTxns runs the catch-up walk for at most n transactions, as a node
// that crashes after them would.
func CatchUpTxns(ctx context.Context, s *Search, n int) error { return s.catchUp(ctx, n) }
