package simulation

import (
	"slices"
	"time"
)

// Report is the outcome of a run, written as JSON by WriteReport.
type Report struct {
	Scenario    Scenario  `json:"scenario"`
	Mode        string    `json:"mode"`
	Seed        uint64    `json:"seed"`
	Command     string    `json:"command,omitempty"`
	StartedAt   time.Time `json:"started_at"`
	WallSeconds float64   `json:"wall_seconds"`
	// Passed: every expected event (and unexpired sticky event) reached
	// every joined node and the nodes converged within Settle.
	Passed   bool     `json:"passed"`
	Failures []string `json:"failures,omitempty"`

	Sent        SentStats        `json:"sent"`
	Delivery    DeliveryStats    `json:"delivery"`
	Latency     Distribution     `json:"delivery_latency_ms"`
	StickyLate  StickyLateStats  `json:"sticky_to_late_joiners"`
	Convergence ConvergenceStats `json:"convergence"`
	Memory      MemoryStats      `json:"memory"`
	Nodes       []NodeStats      `json:"nodes"`
	Steps       []StepLog        `json:"steps,omitempty"`
	// Timeline samples the run once a second (chart data).
	Timeline []Sample `json:"timeline"`

	latencies []float64 // ms, for the chart
}

// SentStats count what the traffic generator did.
type SentStats struct {
	Messages   int   `json:"messages"`
	Sticky     int   `json:"sticky"`
	SendErrors int64 `json:"send_errors"`
	Skipped    int64 `json:"skipped_ticks"`
}

// DeliveryStats: each expected pair is one event owed to one joined node
// (not its sender): events sent after the node joined, and unexpired
// sticky events whenever sent.
type DeliveryStats struct {
	Expected      int     `json:"expected"`
	Delivered     int     `json:"delivered"`
	Completeness  float64 `json:"completeness"`
	Missing       int     `json:"missing"`
	MissingSticky int     `json:"missing_sticky"`
	// MissingPreJoinSticky are sticky events sent before a node joined
	// that never reached it: only the sticky push to newly joined servers
	// (MSC4354) delivers those.
	MissingPreJoinSticky int `json:"missing_pre_join_sticky"`
	// SeenBySync is how many delivered pairs the node's user saw in
	// /sync; the rest were found in the store at the final check (their
	// latency is counted up to that check).
	SeenBySync int `json:"seen_by_sync"`
}

// StickyLateStats measure sticky events sent before a node joined.
type StickyLateStats struct {
	Expected     int          `json:"expected"`
	Delivered    int          `json:"delivered"`
	Completeness float64      `json:"completeness"`
	Latency      Distribution `json:"latency_after_join_ms"`
}

// ConvergenceStats: converged means all events everywhere and the same
// forward extremities and current state at every member of every room.
type ConvergenceStats struct {
	Converged bool `json:"converged"`
	// SecondsAfterTraffic is from the end of the traffic phase (and of
	// every step) until the first check that found the network converged.
	SecondsAfterTraffic float64 `json:"seconds_after_traffic"`
	// RoomsDisagreeing counts rooms whose members differ in forward
	// extremities or current state at the last check.
	RoomsDisagreeing int      `json:"rooms_disagreeing"`
	Problems         []string `json:"problems,omitempty"`
}

// NodeStats are one node's numbers.
type NodeStats struct {
	Index      int     `json:"index"`
	ServerName string  `json:"server_name"`
	Rooms      []int   `json:"rooms"`
	Starts     int     `json:"starts"`
	Traffic    Traffic `json:"traffic"`
	DiskBytes  int64   `json:"disk_bytes"`
}

// Sample is one point of the run's timeline.
type Sample struct {
	T float64 `json:"t_s"`
	// Delivered is the fraction of (event, node) pairs owed so far that
	// the nodes' users have seen.
	Delivered float64 `json:"delivered"`
	// RoomsAgreeing is the fraction of rooms whose running members have
	// the same forward extremities and state.
	RoomsAgreeing float64 `json:"rooms_agreeing"`
	HeapBytes     uint64  `json:"heap_bytes"`
}

// Distribution summarises durations in milliseconds.
type Distribution struct {
	Count int     `json:"count"`
	Mean  float64 `json:"mean"`
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P99   float64 `json:"p99"`
	Max   float64 `json:"max"`
}

func distribution(ms []float64) Distribution {
	if len(ms) == 0 {
		return Distribution{}
	}
	s := slices.Clone(ms)
	slices.Sort(s)
	sum := 0.0
	for _, v := range s {
		sum += v
	}
	q := func(p float64) float64 { return s[min(len(s)-1, int(p*float64(len(s))))] }
	return Distribution{Count: len(s), Mean: sum / float64(len(s)), P50: q(0.5), P90: q(0.9), P99: q(0.99), Max: s[len(s)-1]}
}
