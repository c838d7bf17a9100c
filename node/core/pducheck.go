package core

import (
	"fmt"

	"github.com/matrix-org/gomatrixserverlib"
)

// Bounds on the DAG links of one event, so that a peer's forks cannot make
// the node's own events too large to send, nor one event cost without
// limit to check.
const (
	// MaxPrevEvents is how many prev events a local event refers to, and
	// the most an inbound PDU may name: the spec's limit (Synapse refers to
	// 10, Dendrite to the latest 20).
	MaxPrevEvents = 20
	// MaxAuthEvents is the most auth events an inbound PDU may name (the
	// spec's limit; the auth rules never need more than about five).
	MaxAuthEvents = 10
	// MaxDepth is the largest depth an event may have: the largest integer
	// canonical JSON allows (room versions 6 and later). The spec has an
	// event at the limit keep the limit, so a room whose depth a peer has
	// driven there keeps working.
	MaxDepth = 1<<53 - 1
)

// CheckInboundPDU refuses a parsed PDU from a peer that names more prev or
// auth events than the spec allows, or whose depth is out of range (parsing
// already refuses a depth beyond canonical JSON's integers; a negative one
// parses). Its text was checked before parsing (jsontext.Check in
// parseFederatedPDU): the library's parser keeps invalid bytes in strings.
func CheckInboundPDU(ev gomatrixserverlib.PDU) error {
	if n := len(ev.PrevEventIDs()); n > MaxPrevEvents {
		return fmt.Errorf("%w: event %s has %d prev_events; at most %d are allowed", ErrBadInput, ev.EventID(), n, MaxPrevEvents)
	}
	if n := len(ev.AuthEventIDs()); n > MaxAuthEvents {
		return fmt.Errorf("%w: event %s has %d auth_events; at most %d are allowed", ErrBadInput, ev.EventID(), n, MaxAuthEvents)
	}
	if d := ev.Depth(); d < 0 || d > MaxDepth {
		return fmt.Errorf("%w: event %s has depth %d, outside 0..%d", ErrBadInput, ev.EventID(), d, int64(MaxDepth))
	}
	return nil
}
