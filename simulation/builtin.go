package simulation

import (
	"fmt"
	"slices"
	"time"
)

// Builtin returns a shipped scenario by name (see BuiltinNames).
func Builtin(name string) (Scenario, error) {
	for _, s := range builtins() {
		if s.Name == name {
			return s, nil
		}
	}
	return Scenario{}, fmt.Errorf("unknown scenario %q (have %v)", name, BuiltinNames())
}

// BuiltinNames lists the shipped scenarios.
func BuiltinNames() []string {
	var out []string
	for _, s := range builtins() {
		out = append(out, s.Name)
	}
	slices.Sort(out)
	return out
}

// rangeOf is [from, to).
func rangeOf(from, to int) []int {
	var out []int
	for i := from; i < to; i++ {
		out = append(out, i)
	}
	return out
}

// builtins builds the shipped scenarios afresh on each call (no shared
// mutable state). Rates and durations are sized for a 2-core machine.
func builtins() []Scenario {
	const sec = time.Second
	return []Scenario{{
		Name:        "ci-5",
		Description: "5 nodes, one room; node 3 is partitioned away and heals, node 4 joins late and must receive the unexpired sticky events",
		Nodes:       5, Rooms: 1, RoomsPerNode: 1, Latency: 5 * time.Millisecond,
		Duration: 16 * sec, MessagesPerSecond: 4, StickyPerSecond: 0.5, StickyDuration: 10 * time.Minute,
		LateJoiners: []int{4},
		Steps: []Step{
			{At: 3 * sec, Action: StepPartition, Nodes: []int{3}},
			{At: 9 * sec, Action: StepHeal},
			{At: 11 * sec, Action: StepJoin, Nodes: []int{4}},
		},
		Settle: 30 * sec,
	}, {
		Name:        "chat-10",
		Description: "10 nodes in one room chatting, with a few sticky events",
		Nodes:       10, Rooms: 1, RoomsPerNode: 1, Latency: 20 * time.Millisecond, Bandwidth: 1 << 20,
		Duration: 30 * sec, MessagesPerSecond: 10, StickyPerSecond: 0.5, StickyDuration: 10 * time.Minute,
		Settle: 60 * sec,
	}, {
		Name:        "mesh-50",
		Description: "50 nodes, 5 rooms of 20 nodes (each node in 2 rooms); 10 nodes are partitioned away for 20 s; 2 nodes stop for 15 s and restart",
		Nodes:       50, Rooms: 5, RoomsPerNode: 2, Latency: 30 * time.Millisecond, Bandwidth: 1 << 20,
		Duration: 60 * sec, MessagesPerSecond: 8, StickyPerSecond: 0.5, StickyDuration: 30 * time.Minute,
		Steps: []Step{
			{At: 20 * sec, Action: StepPartition, Nodes: rangeOf(40, 50)},
			{At: 30 * sec, Action: StepStop, Nodes: []int{20, 21}},
			{At: 40 * sec, Action: StepHeal},
			{At: 45 * sec, Action: StepStart, Nodes: []int{20, 21}},
		},
		Settle: 90 * sec,
	}, {
		Name:        "mesh-50-heavy",
		Description: "mesh-50 at twice the rate for longer, past what 2 cores carry (sends queue, latency grows): 50 nodes, 5 rooms of 20 nodes (each node in 2 rooms); 10 nodes are partitioned away for 20 s; 2 nodes stop for 15 s and restart",
		Nodes:       50, Rooms: 5, RoomsPerNode: 2, Latency: 30 * time.Millisecond, Bandwidth: 1 << 20,
		Duration: 90 * sec, MessagesPerSecond: 15, StickyPerSecond: 1, StickyDuration: 30 * time.Minute,
		Steps: []Step{
			{At: 20 * sec, Action: StepPartition, Nodes: rangeOf(40, 50)},
			{At: 30 * sec, Action: StepStop, Nodes: []int{20, 21}},
			{At: 40 * sec, Action: StepHeal},
			{At: 45 * sec, Action: StepStart, Nodes: []int{20, 21}},
		},
		Settle: 90 * sec,
	}, {
		Name:        "partition-heal",
		Description: "8 nodes in one room split 4/4 for 15 s while both halves keep talking, then healed",
		Nodes:       8, Rooms: 1, RoomsPerNode: 1, Latency: 20 * time.Millisecond,
		Duration: 30 * sec, MessagesPerSecond: 8,
		Steps: []Step{
			{At: 5 * sec, Action: StepPartition, Nodes: rangeOf(4, 8)},
			{At: 20 * sec, Action: StepHeal},
		},
		Settle: 60 * sec,
	}, {
		Name:        "late-joiners-sticky",
		Description: "6 nodes; 4 send sticky events, nodes 4 and 5 join late and must receive every unexpired sticky event",
		Nodes:       6, Rooms: 1, RoomsPerNode: 1, Latency: 20 * time.Millisecond,
		Duration: 25 * sec, MessagesPerSecond: 3, StickyPerSecond: 1, StickyDuration: 10 * time.Minute,
		LateJoiners: []int{4, 5},
		Steps:       []Step{{At: 15 * sec, Action: StepJoin, Nodes: []int{4, 5}}},
		Settle:      60 * sec,
	}, {
		Name:        "churn",
		Description: "8 nodes in 2 rooms; nodes stop and restart from their data directories while others keep sending",
		Nodes:       8, Rooms: 2, RoomsPerNode: 2, Latency: 20 * time.Millisecond,
		Duration: 30 * sec, MessagesPerSecond: 8, StickyPerSecond: 0.5, StickyDuration: 10 * time.Minute,
		Steps: []Step{
			{At: 5 * sec, Action: StepStop, Nodes: []int{5}},
			{At: 10 * sec, Action: StepStop, Nodes: []int{6, 7}},
			{At: 13 * sec, Action: StepStart, Nodes: []int{5}},
			{At: 20 * sec, Action: StepStart, Nodes: []int{6, 7}},
			{At: 22 * sec, Action: StepStop, Nodes: []int{2}},
			{At: 26 * sec, Action: StepStart, Nodes: []int{2}},
		},
		Settle: 60 * sec,
	}}
}
