package core

import (
	"encoding/json"
	"fmt"
)

func DecodeJSON(b []byte, v any) error {
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("decode stored record: %w", err)
	}
	return nil
}
