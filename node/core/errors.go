package core

import "errors"

// Errors returned by the node. Callers wrap or match them with errors.Is; the
// HTTP edge turns each into one Matrix error code.
var (
	// ErrForbidden: the caller may not do this (auth rules, power levels, membership).
	ErrForbidden = errors.New("forbidden")
	// ErrNotFound: the room, event, user, alias or other thing does not exist (or is not visible).
	ErrNotFound = errors.New("not found")
	// ErrUserInUse: the requested user ID is taken.
	ErrUserInUse = errors.New("user ID already taken")
	// ErrInvalidUsername: the requested localpart is not allowed.
	ErrInvalidUsername = errors.New("invalid username")
	// ErrUnknownToken: the access token is unknown or was logged out.
	ErrUnknownToken = errors.New("unknown access token")
	// ErrBadLogin: wrong user or password.
	ErrBadLogin = errors.New("invalid username or password")
	// ErrBadInput: the request is well-formed JSON but its values are wrong.
	ErrBadInput = errors.New("bad input")
	// ErrInvalidParam: a parameter has an invalid value.
	ErrInvalidParam = errors.New("invalid parameter")
	// ErrUnsupportedRoomVersion: the room version is not one this node supports.
	ErrUnsupportedRoomVersion = errors.New("unsupported room version")
	// ErrRoomInUse: the room alias is taken.
	ErrRoomInUse = errors.New("room alias already taken")
	// ErrTooLarge: the event is larger than the spec allows.
	ErrTooLarge = errors.New("event too large")
	// ErrRegistrationDisabled: open registration is off.
	ErrRegistrationDisabled = errors.New("registration is disabled")
	// ErrNotJoined: the user is not joined to the room.
	ErrNotJoined = errors.New("not joined to room")
	// ErrInvalidSignature: a key or object is not signed as it must be.
	ErrInvalidSignature = errors.New("invalid signature")
	// ErrMissingParam: something the request needs is absent (e.g. a master
	// key to check a self-signing key against).
	ErrMissingParam = errors.New("missing parameter")
	// ErrRemoteUnavailable: another server could not be reached, or failed
	// to answer (a transport error, a timeout, a 5xx or an unexpected
	// answer).
	ErrRemoteUnavailable = errors.New("remote server unavailable")
)
