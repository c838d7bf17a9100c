package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"
)

// diskOpts are the flags of the per-profile disk table.
type diskOpts struct {
	profiles string // comma-separated; "" skips the table
	steps    string // comma-separated event counts, ascending
	rooms    int
	workers  int
	only     bool // the disk table alone
}

// register adds the disk table's flags to the command line.
func (d *diskOpts) register() {
	flag.StringVar(&d.profiles, "disk-profiles", "phone,pi,server", "storage profiles of the disk table (empty: no table)")
	flag.StringVar(&d.steps, "disk-steps", "1000,10000,100000", "event counts at which the disk table measures, ascending")
	flag.IntVar(&d.rooms, "disk-rooms", 20, "rooms the disk table's events are spread over")
	flag.IntVar(&d.workers, "disk-workers", 32, "parallel sends of the disk table's load (the node batches their commits)")
	flag.BoolVar(&d.only, "disk-only", false, "measure the disk table only")
}

// usage is what a directory takes on disk, split by Badger file kind.
type usage struct {
	allocated, apparent int64
	// apparentBy and allocatedBy are keyed by kind: "vlog" (value log),
	// "mem" (memtable write-ahead logs), "sst" (tables), "other".
	apparentBy, allocatedBy map[string]int64
}

// fileKind names a data directory file by what Badger keeps in it.
func fileKind(name string) string {
	switch filepath.Ext(name) {
	case ".vlog":
		return "vlog"
	case ".mem":
		return "mem"
	case ".sst":
		return "sst"
	}
	return "other"
}

// dirUsage sums dir's regular files: bytes allocated (st_blocks, what du
// reports and what fills a device) and apparent sizes (what ls -l and
// Android's per-app storage screen show; Badger's preallocated files are
// sparse, so the two differ).
func dirUsage(dir string) (usage, error) {
	u := usage{apparentBy: map[string]int64{}, allocatedBy: map[string]int64{}}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		st, ok := info.Sys().(*syscall.Stat_t)
		if !ok {
			return errors.New("disk: no block count on this system")
		}
		k := fileKind(d.Name())
		u.apparent += info.Size()
		u.apparentBy[k] += info.Size()
		u.allocated += st.Blocks * 512
		u.allocatedBy[k] += st.Blocks * 512
		return nil
	})
	return u, err
}

// diskRow is one profile at one event count.
type diskRow struct {
	profile string
	events  int
	running usage // with the node running, a settle period after the load
	stopped usage // after a clean stop
	rate    float64
}

// diskSteps parses the -disk-steps list.
func diskSteps(s string) ([]int, error) {
	var steps []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("disk-steps: %q is not a positive count", f)
		}
		steps = append(steps, n)
	}
	if !slices.IsSorted(steps) {
		return nil, errors.New("disk-steps: counts must ascend")
	}
	return steps, nil
}

// measureDiskProfiles fills the disk table: for each profile, a node on a
// new data directory is loaded step by step to each event count, measured
// running, stopped cleanly, measured again and restarted for the next step.
func measureDiskProfiles(ctx context.Context, o opts) ([]diskRow, error) {
	if o.disk.profiles == "" {
		return nil, nil
	}
	steps, err := diskSteps(o.disk.steps)
	if err != nil {
		return nil, err
	}
	var rows []diskRow
	for _, profile := range strings.Split(o.disk.profiles, ",") {
		profile = strings.TrimSpace(profile)
		r, err := measureDiskProfile(ctx, o, profile, steps)
		if err != nil {
			return nil, fmt.Errorf("disk %s: %w", profile, err)
		}
		rows = append(rows, r...)
	}
	return rows, nil
}

func measureDiskProfile(ctx context.Context, o opts, profile string, steps []int) ([]diskRow, error) {
	data := filepath.Join(o.work, "disk-"+profile, "data")
	// Without fsync on commit: the files written are the same, and the load
	// is several times faster (fsync, not CPU, bounds it here).
	args := []string{"--profile", profile, "--no-sync-writes"}
	p, _, err := startNode(ctx, o.bin, data, nil, args...)
	if err != nil {
		return nil, err
	}
	defer func() { _ = p.stop() }()
	c, err := register(ctx, p.base)
	if err != nil {
		return nil, err
	}
	rooms := make([]string, o.disk.rooms)
	for i := range rooms {
		var out struct {
			RoomID string `json:"room_id"`
		}
		if err := c.do(ctx, "POST", "/_matrix/client/v3/createRoom", map[string]any{"name": fmt.Sprintf("room %d", i)}, &out); err != nil {
			return nil, err
		}
		rooms[i] = out.RoomID
	}
	events := len(rooms) * roomStateEvents
	var rows []diskRow
	for _, step := range steps {
		t0 := time.Now()
		n := max(step-events, 0)
		if err := sendSpread(ctx, c, rooms, events, n, o.disk.workers); err != nil {
			return nil, err
		}
		row := diskRow{profile: profile, events: step, rate: float64(n) / time.Since(t0).Seconds()}
		events += n
		time.Sleep(o.settle)
		if row.running, err = dirUsage(data); err != nil {
			return nil, err
		}
		if err := p.stop(); err != nil {
			return nil, err
		}
		if row.stopped, err = dirUsage(data); err != nil {
			return nil, err
		}
		rows = append(rows, row)
		if p, _, err = startNode(ctx, o.bin, data, nil, args...); err != nil {
			return nil, err
		}
		c.base = p.base // a new port; the access token is in the database
	}
	return rows, nil
}

// sendSpread sends n messages round-robin over rooms from workers parallel
// senders; first numbers their transaction IDs so that every step's are new.
func sendSpread(ctx context.Context, c *client, rooms []string, first, n, workers int) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(workers)
	for i := range n {
		seq := first + i
		room := rooms[seq%len(rooms)]
		g.Go(func() error {
			path := fmt.Sprintf("/_matrix/client/v3/rooms/%s/send/m.room.message/d%d", url.PathEscape(room), seq)
			body := map[string]any{"msgtype": "m.text", "body": fmt.Sprintf("message %d: a line of chat of a typical length, about eighty bytes long", seq)}
			return c.do(gctx, "PUT", path, body, nil)
		})
	}
	return g.Wait()
}

// printDisk writes the disk table as Markdown.
func printDisk(w io.Writer, rows []diskRow, o opts) {
	if len(rows) == 0 {
		return
	}
	fmt.Fprintf(w, "\nDisk by profile (%d rooms; %d parallel sends). Allocated is what du reports and what fills the device; apparent is what ls -l and a phone's storage screen show (Badger preallocates sparse files). Running: %s after the load; stopped: after a clean stop.\n\n", o.disk.rooms, o.disk.workers, o.settle)
	fmt.Fprintf(w, "| profile | events | running: allocated | running: apparent | stopped: allocated | stopped: apparent | running apparent by kind | load |\n|---|---|---|---|---|---|---|---|\n")
	for _, r := range rows {
		fmt.Fprintf(w, "| %s | %d | %s | %s | %s | %s | %s | %.0f/s |\n", r.profile, r.events,
			mb(r.running.allocated), mb(r.running.apparent), mb(r.stopped.allocated), mb(r.stopped.apparent), kinds(r.running.apparentBy), r.rate)
	}
}

// mb shows a size in MB (10^6 bytes, the unit of the targets).
func mb(n int64) string { return fmt.Sprintf("%.1f MB", float64(n)/1e6) }

func kinds(m map[string]int64) string {
	var parts []string
	for _, k := range []string{"vlog", "mem", "sst", "other"} {
		parts = append(parts, fmt.Sprintf("%s %.1f", k, float64(m[k])/1e6))
	}
	return strings.Join(parts, ", ")
}
