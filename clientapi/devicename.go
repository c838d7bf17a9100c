package clientapi

import (
	"net/http"
	"unicode/utf8"

	"github.com/edgenode/edgenode/internal/mxhttp"
)

// maxDeviceDisplayName bounds a device's display name, in characters. The
// spec sets no limit; Synapse's is 100 characters, answered with 400
// M_TOO_LARGE, so clients already handle that answer. Names are stored per
// device and listed to the user's other devices and (through device keys)
// to other servers, so an unbounded one costs everyone.
const maxDeviceDisplayName = 100

// checkDeviceDisplayName refuses a display name over maxDeviceDisplayName
// characters. field names it in the error (display_name,
// initial_device_display_name).
func checkDeviceDisplayName(field, name string) error {
	if n := utf8.RuneCountInString(name); n > maxDeviceDisplayName {
		return mxhttp.Errorf(http.StatusBadRequest, "M_TOO_LARGE", "%s is %d characters long (at most %d)", field, n, maxDeviceDisplayName)
	}
	return nil
}
