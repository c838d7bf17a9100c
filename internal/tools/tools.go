//go:build tools

// Package tools records build tools as module requirements, so `go install`
// and gobind resolve them at the versions go.mod pins. gobind needs
// golang.org/x/mobile/bind in the module it binds.
package tools

import (
	_ "golang.org/x/mobile/bind"
)
