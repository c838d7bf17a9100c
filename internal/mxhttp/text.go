package mxhttp

import (
	"github.com/edgenode/edgenode/internal/jsontext"
)

// checkText refuses a body that is not text every server reads the same
// way: bytes that are not UTF-8, or an escaped lone surrogate ("\ud800").
// encoding/json would quietly turn either into U+FFFD, so the node would
// store and sign something else than the client sent; and an event with
// invalid UTF-8 in it is refused by every other server, which once held
// up a destination's whole outbound queue (issue 13, finding 3). Both are
// M_NOT_JSON: the spec's JSON is UTF-8 text. ReadBody runs it on every
// client request body before any other work on it.
func checkText(raw []byte) error {
	if err := jsontext.Check(raw); err != nil {
		return NotJSON("body %v", err)
	}
	return nil
}
