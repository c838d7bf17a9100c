package media

import "errors"

// Errors of the store; the HTTP edge turns them into Matrix errors.
var (
	// ErrNotFound: no such media (or an expired media ID).
	ErrNotFound = errors.New("media: not found")
	// ErrInvalidID: a media ID or server name that is malformed.
	ErrInvalidID = errors.New("media: invalid media ID")
	// ErrTooLarge: the content is larger than allowed (M_TOO_LARGE).
	ErrTooLarge = errors.New("media: content too large")
	// ErrQuota: the upload would exceed the user's or the node's quota
	// (M_RESOURCE_LIMIT_EXCEEDED).
	ErrQuota = errors.New("media: quota exceeded")
	// ErrForbidden: a pending media ID created by another user.
	ErrForbidden = errors.New("media: not the creator of this media ID")
	// ErrCannotOverwrite: the media ID already has content.
	ErrCannotOverwrite = errors.New("media: media already uploaded")
	// ErrPendingLimit: the user has too many pending media IDs.
	ErrPendingLimit = errors.New("media: too many pending uploads")
	// ErrNotYetUploaded: a created media ID whose content has not come.
	ErrNotYetUploaded = errors.New("media: not yet uploaded")
	// ErrCannotThumbnail: the content is not an image the store decodes.
	ErrCannotThumbnail = errors.New("media: cannot thumbnail this content")
	// ErrTooManyPixels: the image's header announces more pixels than
	// the thumbnail budget; it is not decoded.
	ErrTooManyPixels = errors.New("media: image too large to thumbnail")
	// ErrClosed: the store is closed.
	ErrClosed = errors.New("media: store closed")
)
