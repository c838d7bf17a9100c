package search

// SetMaxScan makes s's scan budget small, so a test reaches it with a few
// messages.
func SetMaxScan(s *Search, n int) { s.maxScan = n }
