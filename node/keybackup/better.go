package keybackup

import (
	"encoding/json"
	"fmt"

	"github.com/edgenode/edgenode/node/core"
)

// keyData is one backed-up session key (the spec's KeyBackupData).
// session_data is the client's, encrypted: the server only checks it is an
// object.
type keyData struct {
	FirstMessageIndex int64           `json:"first_message_index"`
	ForwardedCount    int64           `json:"forwarded_count"`
	IsVerified        bool            `json:"is_verified"`
	SessionData       json.RawMessage `json:"session_data"`
}

// better reports whether k should replace old, by the spec's rule: a
// verified key beats an unverified one; between equally verified keys, the
// lower first_message_index wins (it decrypts more); then the lower
// forwarded_count. A key equal on all three does not replace the stored
// one, so uploading the same key again changes nothing.
func (k keyData) better(old keyData) bool {
	if k.IsVerified != old.IsVerified {
		return k.IsVerified
	}
	if k.FirstMessageIndex != old.FirstMessageIndex {
		return k.FirstMessageIndex < old.FirstMessageIndex
	}
	return k.ForwardedCount < old.ForwardedCount
}

// parseKey checks an uploaded key and returns it with its JSON as stored
// and served (compacted, the four fields only).
func parseKey(raw json.RawMessage) (keyData, []byte, error) {
	if len(raw) > MaxKeyBytes {
		return keyData{}, nil, fmt.Errorf("%w: a key larger than %d bytes", core.ErrTooLarge, MaxKeyBytes)
	}
	var in struct {
		FirstMessageIndex *int64          `json:"first_message_index"`
		ForwardedCount    *int64          `json:"forwarded_count"`
		IsVerified        *bool           `json:"is_verified"`
		SessionData       json.RawMessage `json:"session_data"`
	}
	if err := json.Unmarshal(raw, &in); err != nil {
		return keyData{}, nil, fmt.Errorf("%w: key data: %v", core.ErrBadInput, err)
	}
	switch {
	case in.FirstMessageIndex == nil || in.ForwardedCount == nil || in.IsVerified == nil || in.SessionData == nil:
		return keyData{}, nil, fmt.Errorf("%w: key data needs first_message_index, forwarded_count, is_verified and session_data", core.ErrBadInput)
	case *in.FirstMessageIndex < 0 || *in.ForwardedCount < 0:
		return keyData{}, nil, fmt.Errorf("%w: first_message_index and forwarded_count cannot be negative", core.ErrBadInput)
	}
	sd, err := compactObject(in.SessionData, "session_data")
	if err != nil {
		return keyData{}, nil, err
	}
	k := keyData{FirstMessageIndex: *in.FirstMessageIndex, ForwardedCount: *in.ForwardedCount, IsVerified: *in.IsVerified, SessionData: sd}
	b, err := json.Marshal(k)
	if err != nil {
		return keyData{}, nil, fmt.Errorf("encode key data: %w", err)
	}
	return k, b, nil
}
