package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/edgenode/edgenode/node"
)

// accountCmd is "edgenode account SUBCOMMAND".
func accountCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "create" {
		fmt.Fprint(stderr, "Usage: edgenode account create --user NAME [flags]\n")
		if len(args) > 0 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help") {
			return flag.ErrHelp
		}
		return errUsage
	}
	return accountCreateCmd(ctx, args[1:], stdout, stderr)
}

// accountCreateCmd is "edgenode account create": it opens the node's data
// directory directly (the node must not be running: Badger allows one
// process per directory) and registers an account, bypassing closed
// registration. It prints the new user ID.
func accountCreateCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("edgenode account create", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: edgenode account create --user NAME [flags]

Creates an account on a stopped node and prints its user ID. The password
comes from --password, --password-file, or the EDGENODE_PASSWORD environment
variable (preferred: a --password is visible to other local users in ps).

Flags:
`)
		fs.PrintDefaults()
	}
	cf := addConfigFlags(fs, false)
	user := fs.String("user", "", "the account's `localpart` (alice) or user ID (@alice:<server name>)")
	password := fs.String("password", "", "the account's `password`")
	passwordFile := fs.String("password-file", "", "read the password from `file` (first line; - for stdin)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *user == "" {
		fmt.Fprintln(stderr, "--user is required")
		fs.Usage()
		return errUsage
	}
	pw, err := readPassword(*password, *passwordFile, cf.getenv, os.Stdin)
	if err != nil {
		return err
	}
	cfg, err := cf.load()
	if err != nil {
		return err
	}
	n, err := node.New(ctx, nodeConfig(cfg, newLogger(stderr, cfg)))
	if err != nil {
		return explainOpenError(cfg.DataDir, err)
	}
	sess, err := register(ctx, n, *user, pw)
	if cerr := n.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close database: %w", cerr)
	}
	if err != nil {
		return fmt.Errorf("create account %q: %w", *user, err)
	}
	fmt.Fprintln(stdout, sess.UserID)
	return nil
}

// readPassword picks the password from, in order, the flag, the file, and
// the EDGENODE_PASSWORD environment variable. It never prompts, so it works
// in scripts and CI. An account without a password could never log in, so
// one is required.
func readPassword(flagPW, file string, getenv func(string) string, stdin io.Reader) (string, error) {
	switch {
	case flagPW != "" && file != "":
		return "", errors.New("give --password or --password-file, not both")
	case flagPW != "":
		return flagPW, nil
	case file != "":
		var raw []byte
		var err error
		if file == "-" {
			raw, err = io.ReadAll(stdin)
		} else {
			raw, err = os.ReadFile(file)
		}
		if err != nil {
			return "", fmt.Errorf("password file: %w", err)
		}
		pw, _, _ := strings.Cut(string(raw), "\n")
		pw = strings.TrimSuffix(pw, "\r")
		if pw == "" {
			return "", fmt.Errorf("password file %s: first line is empty", file)
		}
		return pw, nil
	case getenv("EDGENODE_PASSWORD") != "":
		return getenv("EDGENODE_PASSWORD"), nil
	}
	return "", errors.New("no password: give --password-file FILE, set EDGENODE_PASSWORD, or give --password")
}

// register creates the account user (a localpart, or a user ID on this
// node) with no device: the user logs in from a client.
func register(ctx context.Context, n *node.Node, user, password string) (node.Session, error) {
	localpart := user
	if rest, ok := strings.CutPrefix(user, "@"); ok {
		lp, server, _ := strings.Cut(rest, ":")
		if server != n.ServerName() {
			return node.Session{}, fmt.Errorf("%s is not a user ID on this node (server name %s); give the localpart only", user, n.ServerName())
		}
		localpart = lp
	}
	return n.Register(ctx, node.RegisterRequest{Localpart: localpart, Password: password, Admin: true, InhibitLogin: true})
}
