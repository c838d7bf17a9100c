// Command footprint measures edgenode's small-device footprint against a
// built binary (BENCHMARKS.md, "Footprint"): binary sizes, resident memory
// idle after start and after a load of rooms x events with peers connected,
// start-up time to serving /versions on the loaded database, disk used
// per 10,000 events, and disk used by each storage profile at 1,000, 10,000
// and 100,000 events (disk.go; -disk-only for that table alone).
// scripts/footprint.sh builds the binaries and runs it:
//
//	go run ./cmd/footprint -bin bin/edgenode -arm64 bin/edgenode-linux-arm64 -armv7 bin/edgenode-linux-armv7
//
// The node runs as its own process with `edgenode run`'s defaults (the pi
// profile, synchronous writes, DHT on) except that it listens on loopback
// only and mDNS is off; memory is read from /proc/<pid>/status. The peers
// are libp2p hosts in this process (p2ptransport, as a node uses), so their
// memory is not counted.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// opts are the command's flags.
type opts struct {
	bin, arm64, armv7 string
	work              string
	rooms, events     int
	peers             int
	startups          int
	settle            time.Duration
	disk              diskOpts // disk.go
}

func main() {
	var o opts
	var idle idleOpts
	idle.register(flag.CommandLine)
	flag.StringVar(&o.bin, "bin", "bin/edgenode", "edgenode binary to measure (this machine's architecture)")
	flag.StringVar(&o.arm64, "arm64", "", "linux/arm64 binary, for its size only")
	flag.StringVar(&o.armv7, "armv7", "", "linux/arm (GOARM=7) binary, for its size only")
	flag.StringVar(&o.work, "work", "", "work directory (default: a new temporary one, removed afterwards)")
	flag.IntVar(&o.rooms, "rooms", 100, "rooms to create")
	flag.IntVar(&o.events, "events", 100, "messages to send into each room")
	flag.IntVar(&o.peers, "peers", 10, "libp2p peers connected to the node during the load")
	flag.IntVar(&o.startups, "startups", 5, "restarts timed on the loaded database")
	flag.DurationVar(&o.settle, "settle", 5*time.Second, "wait before reading idle memory")
	o.disk.register()
	flag.Parse()
	if idle.enabled {
		if err := runIdle(context.Background(), o, idle, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "footprint:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(context.Background(), o); err != nil {
		fmt.Fprintln(os.Stderr, "footprint:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o opts) error {
	if o.work == "" {
		dir, err := os.MkdirTemp("", "edgenode-footprint-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		o.work = dir
	}
	if o.disk.only {
		rows, err := measureDiskProfiles(ctx, o)
		printDisk(os.Stdout, rows, o)
		return err
	}
	r := &report{}
	for _, b := range []struct{ name, path string }{{"host (" + hostArch() + ")", o.bin}, {"linux/arm64", o.arm64}, {"linux/arm GOARM=7", o.armv7}} {
		if b.path == "" {
			continue
		}
		st, err := os.Stat(b.path)
		if err != nil {
			return fmt.Errorf("binary size: %w", err)
		}
		r.binaries = append(r.binaries, sizeRow{b.name, st.Size()})
	}
	data := filepath.Join(o.work, "data")
	if err := measureRun(ctx, o, data, r); err != nil {
		return err
	}
	if err := measureDisk(data, r); err != nil {
		return err
	}
	if err := measureStartups(ctx, o, data, r); err != nil {
		return err
	}
	rows, err := measureDiskProfiles(ctx, o)
	if err != nil {
		return err
	}
	r.print(os.Stdout, o)
	printDisk(os.Stdout, rows, o)
	return nil
}
