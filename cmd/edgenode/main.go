// Command edgenode runs an embedded Matrix homeserver and administers its
// data directory.
//
// Usage:
//
//	edgenode run [flags]                  start a node (no config file needed)
//	edgenode account create --user NAME   create an account on a stopped node
//	edgenode peer add MULTIADDR           save a static peer (dialled by run)
//	edgenode peer list                    list the saved peers
//	edgenode version                      print the version
//
// Run "edgenode COMMAND -h" for a command's flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

func main() {
	os.Exit(realMain(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

// errUsage marks errors whose message has already been printed with the
// command's usage; realMain then only sets the exit code.
var errUsage = errors.New("usage error")

// realMain runs the command line args and returns the process exit code:
// 0 on success, 1 on failure, 2 on a usage error. It is main without the
// process-global parts, so tests can call it.
func realMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	var err error
	switch cmd, rest := args[0], args[1:]; cmd {
	case "run":
		err = runCmd(ctx, rest, stdout, stderr)
	case "account":
		err = accountCmd(ctx, rest, stdout, stderr)
	case "peer":
		err = peerCmd(ctx, rest, stdout, stderr)
	case "version", "-version", "--version":
		fmt.Fprintln(stdout, versionString())
	case "help", "-h", "-help", "--help":
		usage(stdout)
	default:
		fmt.Fprintf(stderr, "edgenode: unknown command %q\n\n", cmd)
		usage(stderr)
		return 2
	}
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	default:
		fmt.Fprintf(stderr, "edgenode: %v\n", err)
		return 1
	}
}

func usage(w io.Writer) {
	fmt.Fprint(w, `edgenode: an embedded Matrix homeserver

Usage:
  edgenode run [flags]                  start a node; works without a config file
  edgenode account create --user NAME   create an account (the node must be stopped)
  edgenode peer add MULTIADDR           save a static peer, dialled at start; prints its server name
  edgenode peer list                    list the saved peers
  edgenode version                      print the version

Run "edgenode COMMAND -h" for a command's flags.
`)
}
