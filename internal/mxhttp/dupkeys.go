package mxhttp

import "github.com/edgenode/edgenode/internal/jsontext"

// checkDuplicateKeys refuses a JSON body in which some object, at any
// depth, has the same key twice (jsontext.DuplicateKey): 400 M_BAD_JSON.
// raw must already be valid JSON (ReadBody checks that first).
func checkDuplicateKeys(raw []byte) error {
	if err := jsontext.DuplicateKey(raw); err != nil {
		return BadJSON("%v", err)
	}
	return nil
}
