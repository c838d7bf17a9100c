package mobile

import "github.com/edgenode/edgenode/internal/version"

// Version is edgenode's build version (the Makefile's mobile target stamps
// it; "dev" in an unstamped build).
func Version() string { return version.String() }
