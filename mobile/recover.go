package mobile

import (
	"fmt"
	"runtime/debug"
)

// recovered turns a panic into *errp, so it never crosses the gomobile
// boundary (where it would kill the app). Use as: defer recovered(&err).
func recovered(errp *error) {
	if r := recover(); r != nil {
		*errp = fmt.Errorf("mobile: internal error: %v\n%s", r, debug.Stack())
	}
}

// swallowed drops a panic, for the few methods that return no error and
// whose zero result ("" or false) already means "not available".
func swallowed() { _ = recover() }
