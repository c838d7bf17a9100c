package main

import (
	"log/slog"
	"runtime/debug"
	"testing"
)

// memoryLimits are the Go runtime's soft memory limits by profile. Without
// one, the Go heap grows to twice its live size before a collection and
// its peak stays resident: after the footprint load the pi profile's RSS
// was 130-137 MB (peak 180-200 MB) against a 100 MB target, 94 MB of it
// anonymous (BENCHMARKS.md, "Footprint"); with 64 MiB it was 103 MB, with
// 52 MiB 89 MB. A soft limit makes the collector
// run sooner as the heap nears it; being soft, a node that needs more still
// gets it (Go caps the collector's CPU share rather than failing). The
// server profile has none.
var memoryLimits = map[string]int64{
	"phone": 48 << 20,
	"pi":    52 << 20,
}

// setMemoryLimit applies the profile's soft memory limit unless GOMEMLIMIT
// is set (the operator's choice wins). The limit is process-wide, and tests
// run the command in their own process, so in a test binary it is left
// alone. It returns the limit applied, 0 for none.
func setMemoryLimit(profile string, getenv func(string) string, log *slog.Logger) int64 {
	limit, ok := memoryLimits[profile]
	if !ok || getenv("GOMEMLIMIT") != "" || testing.Testing() {
		return 0
	}
	debug.SetMemoryLimit(limit)
	log.Debug("Go soft memory limit set", "profile", profile, "limit_mib", limit>>20)
	return limit
}
