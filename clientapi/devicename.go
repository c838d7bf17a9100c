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

// maxDeviceID bounds a device ID a client chooses at login or
// registration, in bytes: it is part of storage keys, tokens' records and
// every to-device and key request, and Badger refuses keys over 64 KB.
// Synapse's limit is the same, 512, answered 400 M_INVALID_PARAM.
const maxDeviceID = 512

// checkDeviceDisplayName refuses a display name over maxDeviceDisplayName
// characters (PUT /devices/{deviceId}: the user asked for that name and
// is told it is too long).
func checkDeviceDisplayName(name string) error {
	if n := utf8.RuneCountInString(name); n > maxDeviceDisplayName {
		return mxhttp.Errorf(http.StatusBadRequest, "M_TOO_LARGE", "display_name is %d characters long (at most %d)", n, maxDeviceDisplayName)
	}
	return nil
}

// initialDeviceDisplayName bounds a login's or registration's
// initial_device_display_name by cutting it to maxDeviceDisplayName
// characters. Clients make that name up themselves (Element Web puts the
// site's host name in it), and refusing the login for it, as Synapse
// does, locks out users of a client they cannot change.
func initialDeviceDisplayName(name string) string {
	n := 0
	for i := range name {
		if n == maxDeviceDisplayName {
			return name[:i]
		}
		n++
	}
	return name
}

// checkDeviceID refuses a chosen device ID over maxDeviceID bytes.
func checkDeviceID(id string) error {
	if len(id) > maxDeviceID {
		return mxhttp.InvalidParam("device_id is %d bytes long (at most %d)", len(id), maxDeviceID)
	}
	return nil
}
