package mxhttp

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/edgenode/edgenode/node/core"
)

// Error is a Matrix error with its HTTP status.
type Error struct {
	Status  int
	Code    string
	Message string
	// Extra fields merged into the error body (e.g. retry_after_ms).
	Extra map[string]any
}

func (e *Error) Error() string { return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Message) }

// Errorf builds an Error.
func Errorf(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// Common errors.
func BadJSON(format string, args ...any) *Error {
	return Errorf(http.StatusBadRequest, "M_BAD_JSON", format, args...)
}

// NotJSON is the error for a body that is not JSON at all.
func NotJSON(format string, args ...any) *Error {
	return Errorf(http.StatusBadRequest, "M_NOT_JSON", format, args...)
}

// InvalidParam is the error for a bad query or path parameter.
func InvalidParam(format string, args ...any) *Error {
	return Errorf(http.StatusBadRequest, "M_INVALID_PARAM", format, args...)
}

// MissingParam is the error for a required parameter that is absent.
func MissingParam(format string, args ...any) *Error {
	return Errorf(http.StatusBadRequest, "M_MISSING_PARAM", format, args...)
}

// Forbidden is 403 M_FORBIDDEN.
func Forbidden(format string, args ...any) *Error {
	return Errorf(http.StatusForbidden, "M_FORBIDDEN", format, args...)
}

// NotFound is 404 M_NOT_FOUND.
func NotFound(format string, args ...any) *Error {
	return Errorf(http.StatusNotFound, "M_NOT_FOUND", format, args...)
}

// LimitExceeded is 429 M_LIMIT_EXCEEDED; retryAfter becomes the body's
// retry_after_ms (rounded up to a millisecond) so a well-behaved caller knows
// when to try again.
func LimitExceeded(retryAfter time.Duration, format string, args ...any) *Error {
	e := Errorf(http.StatusTooManyRequests, "M_LIMIT_EXCEEDED", format, args...)
	ms := (retryAfter + time.Millisecond - 1) / time.Millisecond
	e.Extra = map[string]any{"retry_after_ms": max(int64(ms), 1)}
	return e
}

// nodeErrors maps node errors to Matrix errors, most specific first.
var nodeErrors = []struct {
	err    error
	status int
	code   string
}{
	{core.ErrUnsupportedRoomVersion, http.StatusBadRequest, "M_UNSUPPORTED_ROOM_VERSION"},
	{core.ErrUserInUse, http.StatusBadRequest, "M_USER_IN_USE"},
	{core.ErrInvalidUsername, http.StatusBadRequest, "M_INVALID_USERNAME"},
	{core.ErrRoomInUse, http.StatusBadRequest, "M_ROOM_IN_USE"},
	{core.ErrUnknownToken, http.StatusUnauthorized, "M_UNKNOWN_TOKEN"},
	{core.ErrBadLogin, http.StatusForbidden, "M_FORBIDDEN"},
	{core.ErrRegistrationDisabled, http.StatusForbidden, "M_FORBIDDEN"},
	{core.ErrTooLarge, http.StatusRequestEntityTooLarge, "M_TOO_LARGE"},
	{core.ErrInvalidParam, http.StatusBadRequest, "M_INVALID_PARAM"},
	{core.ErrInvalidSignature, http.StatusBadRequest, "M_INVALID_SIGNATURE"},
	{core.ErrMissingParam, http.StatusBadRequest, "M_MISSING_PARAM"},
	{core.ErrBadInput, http.StatusBadRequest, "M_BAD_JSON"},
	{core.ErrNotJoined, http.StatusForbidden, "M_FORBIDDEN"},
	{core.ErrForbidden, http.StatusForbidden, "M_FORBIDDEN"},
	{core.ErrNotFound, http.StatusNotFound, "M_NOT_FOUND"},
	// Another server did not answer: the gateway's fault, not the caller's.
	{core.ErrRemoteUnavailable, http.StatusBadGateway, "M_UNKNOWN"},
}

// ToMatrix turns any error into the Matrix error the client sees. Errors the
// caller did not cause become 500 M_UNKNOWN without internal detail.
func ToMatrix(err error) *Error {
	var me *Error
	if errors.As(err, &me) {
		return me
	}
	for _, m := range nodeErrors {
		if errors.Is(err, m.err) {
			return &Error{Status: m.status, Code: m.code, Message: err.Error()}
		}
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return Errorf(http.StatusServiceUnavailable, "M_UNKNOWN", "request cancelled")
	}
	return Errorf(http.StatusInternalServerError, "M_UNKNOWN", "internal server error")
}
