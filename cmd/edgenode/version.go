package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// version is stamped by the Makefile (-ldflags "-X main.version=...").
// Without it, the module version recorded by "go install" is used.
var version string

func versionString() string {
	v := version
	if v == "" {
		v = "dev"
		if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version
		}
	}
	return fmt.Sprintf("edgenode %s (%s %s/%s)", v, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
