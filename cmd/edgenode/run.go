package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/edgenode/edgenode/app"
	"github.com/edgenode/edgenode/node/core"
)

// shutdownTimeout bounds a graceful shutdown: in-flight requests get this long
// to finish before their connections are closed and the database is closed.
const shutdownTimeout = 30 * time.Second

// runCmd is "edgenode run": start a node and serve until SIGINT or SIGTERM
// (or ctx is cancelled), then shut down gracefully.
func runCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("edgenode run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage: edgenode run [flags]\n\nStarts a node. Every setting has a default; no config file is needed.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	cf := addConfigFlags(fs, true)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := cf.load()
	if err != nil {
		return err
	}
	log := newLogger(stderr, cfg)

	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	if cfg.OpenRegistration && !isLoopback(cfg.ClientListen) {
		log.Warn("open registration on a non-loopback address: anyone who can reach it can create accounts",
			"client_listen", cfg.ClientListen)
	}
	ac := app.Config{ClientListen: cfg.ClientListen, Node: nodeConfig(cfg, log),
		Media: app.MediaConfig{FreezeUnauthenticated: cfg.FreezeUnauthenticatedMedia, NoPrefetch: !cfg.mediaPrefetch()}}
	if ac.P2P, err = p2pConfig(cfg); err != nil {
		return err
	}
	a, err := app.Start(ctx, ac)
	if err != nil {
		return explainOpenError(cfg.DataDir, err)
	}
	if g := app.StartMemoryGuard(cfg.StorageProfile, ac.Node.CacheBytes, a.TrimCaches, os.Getenv, log); g != nil {
		defer g.Stop()
	}
	reg := "closed (create accounts with: edgenode account create --user NAME)"
	if cfg.OpenRegistration {
		reg = "open"
	}
	// On stdout, one fact a line, so scripts can read the URL when port 0 was asked for.
	fmt.Fprintf(stdout, "edgenode is running\n  base URL:     %s\n  server name:  %s\n  data dir:     %s\n  registration: %s\n",
		a.BaseURL(), a.ServerName(), cfg.DataDir, reg)
	for _, addr := range a.PeerAddrs() {
		fmt.Fprintf(stdout, "  peer address: %s\n", addr)
	}

	select {
	case <-ctx.Done():
	case <-a.Done():
		// It stopped by itself: a storage fault (app/health.go). Exit
		// non-zero, so a supervisor (systemd) restarts it or says why.
		return fmt.Errorf("stopped: %w", a.Err())
	}
	stop() // a second SIGINT/SIGTERM now kills the process at once
	log.Info("shutting down", "timeout", shutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := a.Close(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("stopped")
	return nil
}

// nodeConfig maps the command's configuration onto the node's.
func nodeConfig(cfg Config, log *slog.Logger) core.Config {
	regs := core.RateLimit{Burst: cfg.RegistrationBurst, Every: cfg.RegistrationEvery}
	if cfg.NoRegistrationLimit {
		regs = core.RateLimit{Burst: -1}
	}
	return core.Config{
		Registrations:    regs,
		DataDir:          cfg.DataDir,
		ServerName:       cfg.ServerName,
		StorageProfile:   cfg.StorageProfile,
		OpenRegistration: cfg.OpenRegistration,
		WebOrigins:       cfg.WebOrigins,
		URLPreview:       cfg.URLPreview,
		NoSyncWrites:     cfg.NoSyncWrites,
		CacheBytes:       core.DefaultCacheBytes(cfg.StorageProfile),
		Logger:           log,
	}
}

// parseFlags parses args and rejects positional arguments: every command's
// input comes through flags, so a stray word is a mistake worth reporting.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return err
		}
		return errUsage // the flag package has printed the error and usage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return errUsage
	}
	return nil
}

// explainOpenError turns Badger's directory-lock failure into advice. Badger
// formats the lock error as text (its cause is not wrapped), so match the text.
func explainOpenError(dataDir string, err error) error {
	if strings.Contains(err.Error(), "Cannot acquire directory lock") {
		return fmt.Errorf("data directory %s is in use by another process; is an edgenode already running on it? Stop it first (%w)", dataDir, err)
	}
	return err
}
