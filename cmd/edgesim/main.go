// Command edgesim runs a multi-node simulation scenario (see package
// simulation) and writes its report, summary and charts:
//
//	edgesim -scenario mesh-50 -out docs/simulation/mesh-50
//
// It exits 1 when the scenario's network did not converge.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"

	"github.com/edgenode/edgenode/simulation"
)

func main() {
	os.Exit(run())
}

func run() int {
	name := flag.String("scenario", "ci-5", "scenario: "+strings.Join(simulation.BuiltinNames(), ", "))
	out := flag.String("out", "", "directory for report.json, summary.md and the charts (default sim-<scenario>)")
	mode := flag.String("mode", simulation.ModeMocknet, "network: mocknet or quic (quic cannot partition)")
	seed := flag.Uint64("seed", 1, "seed of the traffic")
	verbose := flag.Bool("v", false, "log the nodes' info messages")
	flag.Parse()

	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	s, err := simulation.Builtin(*name)
	if err != nil {
		fmt.Fprintln(os.Stderr, "edgesim:", err)
		return 2
	}
	if *out == "" {
		*out = "sim-" + s.Name
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	rep, err := simulation.Run(ctx, s, simulation.Options{Mode: *mode, Seed: *seed, Logger: log})
	if err != nil {
		fmt.Fprintln(os.Stderr, "edgesim:", err)
		return 1
	}
	rep.Command = fmt.Sprintf("go run ./cmd/edgesim -scenario %s -mode %s -seed %d -out %s", s.Name, rep.Mode, *seed, *out)
	if err := simulation.WriteOutputs(*out, rep); err != nil {
		fmt.Fprintln(os.Stderr, "edgesim:", err)
		return 1
	}
	fmt.Print(simulation.Summary(rep))
	if !rep.Passed {
		return 1
	}
	return 0
}
