package core

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/edgenode/edgenode/internal/identity"
	"github.com/matrix-org/gomatrixserverlib"
	"github.com/tidwall/gjson"
)

// MSC4354 limits and names (unstable prefix).
const (
	// MaxStickyDurationMS caps stickiness at one hour.
	MaxStickyDurationMS = 3_600_000
	// stickyKeyUnstable is the top-level PDU key this node writes; stickyKeyStable
	// is the proposal's final name, accepted on receipt.
	stickyKeyUnstable = "msc4354_sticky"
	stickyKeyStable   = "sticky"
)

// ParseStickyDuration reads a sticky_duration_ms query parameter: a plain
// decimal integer in 0..MaxStickyDurationMS. Anything else (sign, fraction,
// exponent, out of range) wraps ErrInvalidParam.
func ParseStickyDuration(s string) (int64, error) {
	if s == "" || len(s) > 7 {
		return 0, fmt.Errorf("%w: sticky_duration_ms must be an integer from 0 to %d", ErrInvalidParam, MaxStickyDurationMS)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("%w: sticky_duration_ms must be an integer from 0 to %d", ErrInvalidParam, MaxStickyDurationMS)
		}
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v > MaxStickyDurationMS {
		return 0, fmt.Errorf("%w: sticky_duration_ms must be an integer from 0 to %d", ErrInvalidParam, MaxStickyDurationMS)
	}
	return v, nil
}

// stickyDuration reads an event's sticky duration from its JSON:
// msc4354_sticky.duration_ms, else sticky.duration_ms. Only an integer
// literal in 0..MaxStickyDurationMS makes the event sticky: a float, a
// string, a negative or larger number, or a missing duration does not (the
// object alone is not enough, says the proposal).
func stickyDuration(eventJSON []byte) (int64, bool) {
	if !bytes.Contains(eventJSON, []byte(`sticky"`)) {
		return 0, false // the common case, without parsing
	}
	for _, key := range []string{stickyKeyUnstable, stickyKeyStable} {
		obj := gjson.GetBytes(eventJSON, key)
		if !obj.Exists() {
			continue
		}
		d := obj.Get("duration_ms")
		if !obj.IsObject() || d.Type != gjson.Number {
			return 0, false
		}
		v, err := ParseStickyDuration(d.Raw)
		return v, err == nil
	}
	return 0, false
}

// stickyEnd is when a sticky event stops being sticky, in Unix ms: it starts
// at the earlier of its receipt and its origin_server_ts (so a timestamp in
// the future gains nothing) and lasts its duration, capped at one hour.
func stickyEnd(receivedMS, originTS, durationMS int64) int64 {
	return min(receivedMS, originTS) + min(max(durationMS, 0), MaxStickyDurationMS)
}

// StickyEndOf is stickyEnd for a PDU received at receivedMS; ok is false for
// an event that is not sticky (or is redacted: redaction strips the key).
func StickyEndOf(pdu gomatrixserverlib.PDU, receivedMS int64) (int64, bool) {
	d, ok := stickyDuration(pdu.JSON())
	if !ok {
		return 0, false
	}
	return stickyEnd(receivedMS, int64(pdu.OriginServerTS()), d), true
}

// StickyInfo is the sticky object of an event as clients see it
// (msc4354_sticky), or nil when the event is not sticky.
func StickyInfo(pdu gomatrixserverlib.PDU) json.RawMessage {
	d, ok := stickyDuration(pdu.JSON())
	if !ok {
		return nil
	}
	return json.RawMessage(`{"duration_ms":` + strconv.FormatInt(d, 10) + `}`)
}

// WithStickyKey returns ev with the top-level msc4354_sticky object added.
//
// gomatrixserverlib's builder has no way to add a top-level key, so this
// redoes by hand the last steps of EventBuilder.Build: the content hash
// covers every key but unsigned, signatures and hashes, so it must be
// recomputed; the signature covers the redacted form, which keeps the
// hashes, so it must be redone; and the event ID is the hash of the redacted
// form, so it changes too. The sticky key is not protected from redaction
// (gomatrixserverlib's redaction keeps only the listed top-level keys), so a
// redacted sticky event is an ordinary event, as the proposal says.
func (n *Node) WithStickyKey(ev gomatrixserverlib.PDU, durationMS int64) (gomatrixserverlib.PDU, error) {
	verImpl, err := gomatrixserverlib.GetRoomVersion(ev.Version())
	if err != nil {
		return nil, err
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(ev.JSON(), &m); err != nil {
		return nil, fmt.Errorf("sticky: %w", err)
	}
	delete(m, "signatures")
	delete(m, "hashes")
	delete(m, "unsigned")
	m[stickyKeyUnstable] = json.RawMessage(`{"duration_ms":` + strconv.FormatInt(durationMS, 10) + `}`)
	hashable, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("sticky: %w", err)
	}
	if hashable, err = gomatrixserverlib.CanonicalJSON(hashable); err != nil {
		return nil, fmt.Errorf("sticky: %w", err)
	}
	sum := sha256.Sum256(hashable)
	hashes, _ := json.Marshal(map[string]string{"sha256": base64.RawStdEncoding.EncodeToString(sum[:])})
	m["hashes"] = hashes
	raw, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("sticky: %w", err)
	}
	if raw, err = gomatrixserverlib.CanonicalJSON(raw); err != nil {
		return nil, fmt.Errorf("sticky: %w", err)
	}
	unsigned, err := verImpl.NewEventFromTrustedJSON(raw, false)
	if err != nil {
		return nil, fmt.Errorf("sticky: %w", err)
	}
	signed := unsigned.Sign(n.serverName, identity.KeyID, n.key)
	// Parse again so the event ID is derived from the final JSON, not cached
	// from an earlier form.
	out, err := verImpl.NewEventFromTrustedJSON(signed.JSON(), false)
	if err != nil {
		return nil, fmt.Errorf("sticky: %w", err)
	}
	if len(out.JSON()) > MaxEventSize {
		return nil, fmt.Errorf("event is %d bytes: %w", len(out.JSON()), ErrTooLarge)
	}
	out.EventID()
	return out, nil
}
