package syncapi

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/edgenode/edgenode/node/core"
)

// StreamToken is a position in each of the node's streams, the token clients
// get as next_batch, prev_batch, start and end. Clients treat it as opaque.
//
// On the wire it is "s" followed by the positions in a fixed order, joined by
// "_": "s<room>" today, "s<room>_<todevice>_<receipt>_..." once more streams
// exist. A token with fewer parts than the server knows means 0 for the
// missing ones, so every token handed out before a stream was added stays
// valid; parts beyond the ones known are checked and ignored, so a node rolled
// back to an older version still accepts tokens the newer one issued.
//
// To add a stream: add a field and append it to parts. Never reorder or
// remove parts: that would change what stored tokens mean.
type StreamToken struct {
	// Room is the room-event stream position: the token stands between the
	// event at Room and the one after it.
	Room uint64
	// The other streams, each with its own positions (see node).
	ToDevice    uint64
	Receipt     uint64
	Typing      uint64
	AccountData uint64
	DeviceList  uint64
	Presence    uint64
	// StickyBehind places the sticky-event cursor (MSC4354): the client has
	// had every sticky event up to room-event position Room-StickyBehind.
	// It is stored as a distance behind Room so that 0, and so a token
	// without this part (made before sticky events, or a StreamToken
	// literal), means "up to Room": such a client gets what is new, not
	// every live sticky event again.
	StickyBehind uint64
}

// StickyCursor is the sticky-event cursor: every sticky event at or before
// it has been delivered.
func (t StreamToken) StickyCursor() uint64 { return t.Room - min(t.StickyBehind, t.Room) }

// WithStickyCursor returns t with the sticky cursor at pos (at most Room).
func (t StreamToken) WithStickyCursor(pos uint64) StreamToken {
	t.StickyBehind = t.Room - min(pos, t.Room)
	return t
}

// Limits on what ParseStreamToken reads, so a hostile token costs little.
const (
	maxTokenLen   = 512
	maxTokenParts = 32
)

// errBadToken is wrapped in every parse failure; it carries
// core.ErrInvalidParam so the HTTP edge answers 400 M_INVALID_PARAM.
var errBadToken = fmt.Errorf("%w: malformed stream token", core.ErrInvalidParam)

// parts lists the positions in wire order.
func (t *StreamToken) parts() []*uint64 {
	return []*uint64{&t.Room, &t.ToDevice, &t.Receipt, &t.Typing, &t.AccountData, &t.DeviceList, &t.Presence, &t.StickyBehind}
}

// ParseStreamToken reads a token made by String. Any malformed input is an
// error wrapping core.ErrInvalidParam, never a panic.
func ParseStreamToken(s string) (StreamToken, error) {
	var t StreamToken
	if len(s) > maxTokenLen {
		return t, fmt.Errorf("%w: too long", errBadToken)
	}
	body, ok := strings.CutPrefix(s, "s")
	if !ok || body == "" {
		return t, fmt.Errorf("%w: want s<position>[_<position>...]", errBadToken)
	}
	fields := strings.Split(body, "_")
	if len(fields) > maxTokenParts {
		return t, fmt.Errorf("%w: too many parts", errBadToken)
	}
	dst := t.parts()
	for i, f := range fields {
		v, err := parsePosition(f)
		if err != nil {
			return StreamToken{}, fmt.Errorf("%w: part %d: %v", errBadToken, i+1, err)
		}
		if i < len(dst) {
			*dst[i] = v
		}
	}
	return t, nil
}

// parsePosition accepts only plain decimal digits: no sign, no spaces, no
// underscores, so every token has one spelling (leading zeros aside).
func parsePosition(f string) (uint64, error) {
	if f == "" {
		return 0, errors.New("empty")
	}
	for i := 0; i < len(f); i++ {
		if f[i] < '0' || f[i] > '9' {
			return 0, errors.New("not a decimal number")
		}
	}
	v, err := strconv.ParseUint(f, 10, 64)
	if err != nil {
		return 0, errors.New("out of range")
	}
	return v, nil
}

// String encodes t. Trailing zero parts are left out (they read back as 0),
// which keeps tokens short and makes today's tokens "s<room>".
func (t StreamToken) String() string {
	ps := t.parts()
	n := len(ps)
	for n > 1 && *ps[n-1] == 0 {
		n--
	}
	b := make([]byte, 0, 1+n*8)
	b = append(b, 's')
	for i := 0; i < n; i++ {
		if i > 0 {
			b = append(b, '_')
		}
		b = strconv.AppendUint(b, *ps[i], 10)
	}
	return string(b)
}

// WithRoom returns t with the room-event position replaced, keeping the
// other streams' positions: a /sync token used with /messages comes back
// still usable for /sync.
func (t StreamToken) WithRoom(pos uint64) StreamToken {
	t.Room = pos
	return t
}
