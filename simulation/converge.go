package simulation

import (
	"context"
	"fmt"
	"github.com/edgenode/edgenode/app"
	"slices"
	"strings"
	"time"
)

// verdict is the state of the network at one check.
type verdict struct {
	missing              int // expected (event, node) pairs not at the node
	missingSticky        int // of which sticky events
	missingPreJoinSticky int // of which sticky events sent before the node joined
	disagreeing          []string
	roomsAgreeing        int
	details              []string // the first few problems
	at                   time.Duration
}

func (v verdict) ok() bool { return v.missing == 0 && len(v.disagreeing) == 0 }

// check reads every running member's store: are all expected events
// there, and do the members of each room agree on its forward extremities
// and current state? Events present but never seen through /sync are
// recorded as seen now (an upper bound on their latency).
func (c *cluster) check(ctx context.Context) (verdict, error) {
	var v verdict
	running := c.running()
	byNode := map[int][]expectation{}
	for _, e := range c.rec.expected(time.Now()) {
		byNode[e.node] = append(byNode[e.node], e)
	}
	now := c.rec.since()
	for i, exps := range byNode {
		a := running[i]
		if a == nil {
			v.missing += len(exps)
			v.details = append(v.details, fmt.Sprintf("node %d is not running", i))
			continue
		}
		ids := make([]string, len(exps))
		for k, e := range exps {
			ids[k] = e.ev.ID
		}
		evs, err := inside(a).Events(ctx, ids)
		if err != nil {
			return v, fmt.Errorf("node %d events: %w", i, err)
		}
		have := map[string]bool{}
		for _, ev := range evs {
			have[ev.PDU.EventID()] = true
		}
		for _, e := range exps {
			if have[e.ev.ID] {
				if _, seen := c.rec.arrival(e.ev.ID, i); !seen {
					c.rec.seen(i, e.ev.ID, now)
					c.foundInStore.Add(1)
				}
				continue
			}
			v.missing++
			if e.ev.Sticky {
				v.missingSticky++
			}
			if e.preJoinSticky {
				v.missingPreJoinSticky++
			}
			if len(v.details) < 10 {
				v.details = append(v.details, fmt.Sprintf("node %d lacks %s (room %d, from node %d at %.1fs, sticky %v, sent before its join %v; %s)",
					i, e.ev.ID, e.ev.Room, e.ev.Node, e.ev.At.Seconds(), e.ev.Sticky, e.preJoinSticky,
					c.senderView(ctx, running[e.ev.Node], a.ServerName(), e)))
			}
		}
	}
	for r := range c.roomIDs {
		same, why, err := c.agree(ctx, r, running)
		if err != nil {
			return v, err
		}
		if same {
			v.roomsAgreeing++
		} else {
			v.disagreeing = append(v.disagreeing, fmt.Sprintf("room %d: %s", r, why))
		}
	}
	return v, nil
}

// agree reports whether the running members of room r have the same
// forward extremities and current state.
func (c *cluster) agree(ctx context.Context, r int, running map[int]*app.App) (bool, string, error) {
	var refExt, refState string
	ref := -1
	for _, i := range c.membersOf(r) {
		a := running[i]
		if a == nil {
			continue
		}
		ext, err := inside(a).ForwardExtremities(ctx, c.roomIDs[r])
		if err != nil {
			return false, "", fmt.Errorf("node %d extremities: %w", i, err)
		}
		st, err := inside(a).CurrentState(ctx, c.roomIDs[r])
		if err != nil {
			return false, "", fmt.Errorf("node %d state: %w", i, err)
		}
		ids := make([]string, len(st))
		for k, ev := range st {
			ids[k] = ev.PDU.EventID()
		}
		slices.Sort(ids)
		e, s := strings.Join(ext, ","), strings.Join(ids, ",")
		if ref < 0 {
			ref, refExt, refState = i, e, s
			continue
		}
		if e != refExt {
			return false, fmt.Sprintf("nodes %d and %d differ in forward extremities: %s", ref, i, setDiff(refExt, e)), nil
		}
		if s != refState {
			return false, fmt.Sprintf("nodes %d and %d differ in current state", ref, i), nil
		}
	}
	return true, "", nil
}

// setDiff describes how two comma-joined sets differ: "only at the first
// [...]; only at the second [...]".
func setDiff(a, b string) string {
	as, bs := strings.Split(a, ","), strings.Split(b, ",")
	var onlyA, onlyB []string
	for _, x := range as {
		if !slices.Contains(bs, x) {
			onlyA = append(onlyA, x)
		}
	}
	for _, x := range bs {
		if !slices.Contains(as, x) {
			onlyB = append(onlyB, x)
		}
	}
	return fmt.Sprintf("only at the first %v; only at the second %v", onlyA, onlyB)
}

// senderView says, for an event a node lacks, what its sender knows of the
// receiver: whether the receiver's server is among the room's joined
// servers there, and whether the event is still queued for it (sent and
// acknowledged if not).
func (c *cluster) senderView(ctx context.Context, sender *app.App, receiver string, e expectation) string {
	if sender == nil {
		return "sender not running"
	}
	servers, err := inside(sender).JoinedServers(ctx, c.roomIDs[e.ev.Room])
	if err != nil {
		return "sender: " + err.Error()
	}
	ids, _, _, err := inside(sender).PendingPDUs(ctx, receiver, 10000)
	if err != nil {
		return "sender: " + err.Error()
	}
	return fmt.Sprintf("at the sender: receiver joined %v, event queued %v (%d queued for it)",
		slices.Contains(servers, receiver), slices.Contains(ids, e.ev.ID), len(ids))
}
