//go:build !(linux || darwin)

package core

// freeSpace is unknown where statfs(2) is not at hand.
func freeSpace(string) (int64, bool) { return 0, false }
