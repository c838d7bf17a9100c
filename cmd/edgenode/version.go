package main

import (
	"fmt"
	"runtime"

	"github.com/edgenode/edgenode/internal/version"
)

// versionString is what "edgenode version" prints: the version the
// Makefile stamped (internal/version), Go's and the platform.
func versionString() string {
	return fmt.Sprintf("edgenode %s (%s %s/%s)", version.String(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
