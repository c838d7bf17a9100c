// Package version is edgenode's build version, one place for the command
// and the mobile facade. The Makefile stamps it at link time:
//
//	go build -ldflags "-X github.com/edgenode/edgenode/internal/version.stamp=v1.2.3"
package version

import "runtime/debug"

// stamp is set by the linker (-X); it is the one package variable here
// because -X can set nothing else.
var stamp string

// String is the version: the stamp, else the module version "go install"
// recorded, else "dev".
func String() string {
	if stamp != "" {
		return stamp
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}
