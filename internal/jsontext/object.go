package jsontext

import "encoding/json"

// IsObject reports whether raw is a JSON object (not null, an array or a
// scalar, all of which decode into a struct without error).
func IsObject(raw json.RawMessage) bool {
	var obj map[string]json.RawMessage
	return json.Unmarshal(raw, &obj) == nil && obj != nil
}
