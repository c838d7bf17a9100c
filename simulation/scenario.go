package simulation

import (
	"fmt"
	"time"
)

// Scenario describes one simulation run: the network, who is in which
// room, the traffic and the timeline of disruptions.
type Scenario struct {
	// Name identifies the scenario (Builtin's keys).
	Name string `json:"name"`
	// Description says what the scenario exercises.
	Description string `json:"description"`
	// Nodes is the number of nodes.
	Nodes int `json:"nodes"`
	// Rooms is the number of rooms; room r is created by node r%Nodes.
	Rooms int `json:"rooms"`
	// RoomsPerNode is how many rooms each node joins: node i joins rooms
	// i%Rooms, (i+1)%Rooms, ... (at least 1, at most Rooms).
	RoomsPerNode int `json:"rooms_per_node"`
	// Latency and Bandwidth (bytes per second, 0 unlimited) apply to every
	// mocknet link; the QUIC mode ignores them.
	Latency   time.Duration `json:"latency"`
	Bandwidth float64       `json:"bandwidth"`
	// Duration is the length of the traffic phase.
	Duration time.Duration `json:"duration"`
	// MessagesPerSecond and StickyPerSecond are the total rates of
	// m.room.message and sticky events over all nodes; each event is
	// sent by a random running, joined node into one of its rooms.
	MessagesPerSecond float64 `json:"messages_per_second"`
	StickyPerSecond   float64 `json:"sticky_per_second"`
	// StickyDuration is the sticky_duration_ms of sticky events.
	StickyDuration time.Duration `json:"sticky_duration"`
	// LateJoiners are nodes that join their rooms only at a StepJoin.
	LateJoiners []int `json:"late_joiners,omitempty"`
	// Steps are the disruptions, at times from the start of traffic.
	Steps []Step `json:"steps,omitempty"`
	// Settle bounds the wait for convergence after traffic ends.
	Settle time.Duration `json:"settle"`
}

// Step kinds.
const (
	// StepPartition cuts every link between Step.Nodes and the others.
	StepPartition = "partition"
	// StepHeal restores every link and reconnects all running nodes.
	StepHeal = "heal"
	// StepStop stops Step.Nodes (their data directories are kept).
	StepStop = "stop"
	// StepStart restarts stopped Step.Nodes from their data directories.
	StepStart = "start"
	// StepJoin makes late joiners Step.Nodes join their rooms.
	StepJoin = "join"
)

// Step is one disruption in a scenario's timeline.
type Step struct {
	At     time.Duration `json:"at"`
	Action string        `json:"action"`
	Nodes  []int         `json:"nodes"`
}

// Validate checks a scenario's bounds, so a typo cannot start a run that
// never ends or indexes past the nodes.
func (s Scenario) Validate() error {
	if s.Nodes < 2 || s.Nodes > 200 {
		return fmt.Errorf("scenario %s: nodes %d outside 2..200", s.Name, s.Nodes)
	}
	if s.Rooms < 1 || s.RoomsPerNode < 1 || s.RoomsPerNode > s.Rooms {
		return fmt.Errorf("scenario %s: rooms %d, rooms per node %d", s.Name, s.Rooms, s.RoomsPerNode)
	}
	if s.Duration <= 0 || s.Duration > 30*time.Minute || s.Settle <= 0 || s.Settle > 30*time.Minute {
		return fmt.Errorf("scenario %s: duration %v and settle %v must be in (0, 30m]", s.Name, s.Duration, s.Settle)
	}
	if s.MessagesPerSecond < 0 || s.StickyPerSecond < 0 || s.MessagesPerSecond+s.StickyPerSecond > 1000 {
		return fmt.Errorf("scenario %s: rates out of range", s.Name)
	}
	if s.StickyPerSecond > 0 && s.StickyDuration <= 0 {
		return fmt.Errorf("scenario %s: sticky events need a sticky duration", s.Name)
	}
	check := func(ids []int) error {
		for _, i := range ids {
			if i < 0 || i >= s.Nodes {
				return fmt.Errorf("scenario %s: node %d out of range", s.Name, i)
			}
		}
		return nil
	}
	if err := check(s.LateJoiners); err != nil {
		return err
	}
	for _, st := range s.Steps {
		switch st.Action {
		case StepPartition, StepHeal, StepStop, StepStart, StepJoin:
		default:
			return fmt.Errorf("scenario %s: unknown step %q", s.Name, st.Action)
		}
		if st.At < 0 || st.At > s.Duration {
			return fmt.Errorf("scenario %s: step %s at %v outside the traffic phase", s.Name, st.Action, st.At)
		}
		if err := check(st.Nodes); err != nil {
			return err
		}
	}
	return nil
}

// roomsOf lists the rooms node i belongs to.
func (s Scenario) roomsOf(i int) []int {
	out := make([]int, 0, s.RoomsPerNode)
	for k := range s.RoomsPerNode {
		out = append(out, (i+k)%s.Rooms)
	}
	return out
}

// creator is the node that creates room r.
func (s Scenario) creator(r int) int { return r % s.Nodes }
