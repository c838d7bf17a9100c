package simulation

import (
	"sync"
	"time"
)

// sentEvent is an event a scenario sent and expects everywhere.
type sentEvent struct {
	ID      string
	Room    int
	Node    int
	At      time.Duration // since traffic start, just before the send
	Sticky  bool
	Expires time.Time // sticky events only
}

// recorder holds what was sent, who joined when, and when each node's user
// first saw each event. Safe for concurrent use.
type recorder struct {
	start time.Time

	mu       sync.Mutex
	sent     []*sentEvent
	arrivals map[string]map[int]time.Duration // event ID -> node -> first seen
	joinedAt map[[2]int]time.Duration         // (node, room) -> join settled
	members  map[int][]int                    // room -> nodes joined
	steps    []StepLog
}

// StepLog is a step as it ran.
type StepLog struct {
	Step
	StartedAt float64 `json:"started_at_s"`
	TookMS    float64 `json:"took_ms"`
	Error     string  `json:"error,omitempty"`
}

func newRecorder() *recorder {
	return &recorder{arrivals: map[string]map[int]time.Duration{}, joinedAt: map[[2]int]time.Duration{}, members: map[int][]int{}}
}

// since is the time since traffic start (negative during setup).
func (r *recorder) since() time.Duration { return time.Since(r.start) }

func (r *recorder) addSent(e *sentEvent) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sent = append(r.sent, e)
}

// seen records that node saw an event, keeping the first time.
func (r *recorder) seen(node int, eventID string, at time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.arrivals[eventID]
	if m == nil {
		m = map[int]time.Duration{}
		r.arrivals[eventID] = m
	}
	if _, ok := m[node]; !ok {
		m[node] = at
	}
}

func (r *recorder) joined(node, room int, at time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.joinedAt[[2]int{node, room}] = at
	r.members[room] = append(r.members[room], node)
}

func (r *recorder) logStep(l StepLog) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.steps = append(r.steps, l)
}

// expectation is one (event, node) pair that must be delivered.
type expectation struct {
	ev   *sentEvent
	node int
	// preJoinSticky: a sticky event sent before node joined, which only
	// the sticky push to newly joined servers delivers.
	preJoinSticky bool
	// from is when delivery could start: the send, or the join.
	from time.Duration
}

// expected lists every (event, node) pair that must be delivered by now:
// events sent after a node's join reached the room, and unexpired sticky
// events whenever they were sent. A node's own events are not listed.
func (r *recorder) expected(now time.Time) []expectation {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []expectation
	for _, e := range r.sent {
		for _, n := range r.members[e.Room] {
			if n == e.Node {
				continue
			}
			j := r.joinedAt[[2]int{n, e.Room}]
			switch {
			case e.At >= j:
				out = append(out, expectation{ev: e, node: n, from: e.At})
			case e.Sticky && e.Expires.After(now):
				out = append(out, expectation{ev: e, node: n, preJoinSticky: true, from: j})
			}
		}
	}
	return out
}

// arrival is when node first saw an event.
func (r *recorder) arrival(eventID string, node int) (time.Duration, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	at, ok := r.arrivals[eventID][node]
	return at, ok
}

// restart makes now the start of traffic: setup's joins count from 0.
func (r *recorder) restart() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.start = time.Now()
	for k := range r.joinedAt {
		r.joinedAt[k] = 0
	}
}
