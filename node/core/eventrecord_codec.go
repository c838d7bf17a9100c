package core

import (
	"encoding/binary"
	"errors"
)

// Event records are read for every event served (to check room, position
// and fate) and written once per event, so they use a compact binary form
// rather than JSON: decoding is several times cheaper, and /sync and
// /messages decode one per event.
//
// Layout: format byte, uvarint Pos, flags byte, then each string field as
// uvarint length and bytes, in the order of recordStrings.
const recordFormat byte = 1

const flagSoftFailed byte = 1

var errBadRecord = errors.New("malformed event record")

func (r *EventRecord) recordStrings() []*string {
	return []*string{&r.RoomID, &r.Version, &r.Rejected, &r.StateBefore, &r.StateAfter, &r.RedactedBy, &r.TxnID, &r.DeviceID}
}

// marshalRecord encodes r (not its JSON, which is stored apart).
func (r *EventRecord) marshalRecord() []byte {
	strs := r.recordStrings()
	n := 1 + binary.MaxVarintLen64 + 1
	for _, s := range strs {
		n += binary.MaxVarintLen64 + len(*s)
	}
	b := make([]byte, 0, n)
	b = append(b, recordFormat)
	b = binary.AppendUvarint(b, r.Pos)
	var flags byte
	if r.SoftFailed {
		flags |= flagSoftFailed
	}
	b = append(b, flags)
	for _, s := range strs {
		b = binary.AppendUvarint(b, uint64(len(*s)))
		b = append(b, *s...)
	}
	return b
}

// unmarshalRecord decodes what marshalRecord made; malformed input is an
// error, never a panic.
func (r *EventRecord) unmarshalRecord(b []byte) error {
	if len(b) < 1 || b[0] != recordFormat {
		return errBadRecord
	}
	b = b[1:]
	pos, n := binary.Uvarint(b)
	if n <= 0 || len(b) < n+1 {
		return errBadRecord
	}
	r.Pos = pos
	r.SoftFailed = b[n]&flagSoftFailed != 0
	b = b[n+1:]
	for _, s := range r.recordStrings() {
		l, n := binary.Uvarint(b)
		if n <= 0 || uint64(len(b)-n) < l {
			return errBadRecord
		}
		*s = string(b[n : n+int(l)])
		b = b[n+int(l):]
	}
	if len(b) != 0 {
		return errBadRecord
	}
	return nil
}
