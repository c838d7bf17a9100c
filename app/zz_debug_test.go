package app

import (
	"io"
	"os"
)

func debugOut() io.Writer {
	if os.Getenv("EDGE_DEBUG") != "" {
		return os.Stderr
	}
	return io.Discard
}
