package core

import (
	"encoding/json"
	"fmt"
)

// checkCreationContent refuses a createRoom creation_content whose fields
// the spec defines have the wrong type. The create event is built from it
// and authorised, so a mistyped field would otherwise surface as an auth
// failure (403) of the room's first event, although the request, not any
// permission, is at fault: it is ErrBadInput (400 M_BAD_JSON). Fields the
// spec does not define pass as they are; room_version and creator are set
// by createRoom itself.
func checkCreationContent(raw json.RawMessage) error {
	if len(raw) == 0 {
		return nil
	}
	var c map[string]json.RawMessage
	if err := json.Unmarshal(raw, &c); err != nil {
		return fmt.Errorf("%w: creation_content: %v", ErrBadInput, err)
	}
	var pred map[string]json.RawMessage
	f, t, p := c["m.federate"], c["type"], c["predecessor"]
	switch {
	case f != nil && string(f) != "true" && string(f) != "false":
		return fmt.Errorf("%w: creation_content: m.federate must be a boolean", ErrBadInput)
	case t != nil && t[0] != '"':
		return fmt.Errorf("%w: creation_content: type must be a string", ErrBadInput)
	case p != nil && (json.Unmarshal(p, &pred) != nil || pred == nil || !isJSONString(pred["room_id"]) ||
		(pred["event_id"] != nil && !isJSONString(pred["event_id"]))):
		return fmt.Errorf("%w: creation_content: predecessor must be an object with a room_id string", ErrBadInput)
	}
	return nil
}

// isJSONString reports whether raw, a value json.Unmarshal found valid, is
// a string.
func isJSONString(raw json.RawMessage) bool { return len(raw) > 0 && raw[0] == '"' }
