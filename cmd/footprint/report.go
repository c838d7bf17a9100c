package main

import (
	"fmt"
	"io"
	"time"
)

// report is what footprint measured.
type report struct {
	binaries []sizeRow

	firstStart     time.Duration // exec to /versions on an empty directory
	idle           memory        // after start, empty database
	peersConnected int
	messages       int
	loadTime       time.Duration
	afterLoad      memory // right after the load and one initial /sync
	loadSettled    memory // a settle period later

	diskAllocated, diskApparent int64

	idleLoaded memory          // after restart on the loaded database
	startups   []time.Duration // sorted
}

type sizeRow struct {
	name string
	size int64
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// mem shows memory in MB (10^6 bytes, the unit of the targets) and MiB.
func mem(n int64) string {
	return fmt.Sprintf("%.1f MB (%.1f MiB)", float64(n)/1e6, float64(n)/(1<<20))
}

// split shows where a resident set is: anonymous (Go heap) and file-backed.
func split(m memory) string {
	return fmt.Sprintf("anon %.1f MB, file %.1f MB", float64(m.anon)/1e6, float64(m.file)/1e6)
}

func ms(d time.Duration) string { return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond)) }

// print writes the report as Markdown, the form BENCHMARKS.md keeps.
func (r *report) print(w io.Writer, o opts) {
	fmt.Fprintf(w, "| binary | size |\n|---|---|\n")
	for _, b := range r.binaries {
		fmt.Fprintf(w, "| %s | %s (%d bytes) |\n", b.name, mib(b.size), b.size)
	}
	events := r.messages + o.rooms*roomStateEvents
	per10k := func(n int64) string { return mib(n * 10000 / int64(max(events, 1))) }
	fmt.Fprintf(w, "\n| measure | target | result |\n|---|---|---|\n")
	fmt.Fprintf(w, "| RSS idle after start (empty database, %s after start) | < 40 MB | %s (peak %s; %s) |\n", o.settle, mem(r.idle.rss), mem(r.idle.hwm), split(r.idle))
	fmt.Fprintf(w, "| RSS after %d rooms x %d events with %d peers connected, and one initial /sync | < 100 MB | %s now (%s), peak %s; %s after %s idle (%s) |\n",
		o.rooms, o.events, r.peersConnected, mem(r.afterLoad.rss), split(r.afterLoad), mem(r.afterLoad.hwm), mem(r.loadSettled.rss), o.settle, split(r.loadSettled))
	fmt.Fprintf(w, "| RSS idle after restart on the loaded database | | %s (peak %s; %s) |\n", mem(r.idleLoaded.rss), mem(r.idleLoaded.hwm), split(r.idleLoaded))
	if n := len(r.startups); n > 0 {
		fmt.Fprintf(w, "| start-up to serving /versions, %d-event database (%d runs) | < 300 ms | median %s (min %s, max %s) |\n",
			events, n, ms(r.startups[n/2]), ms(r.startups[0]), ms(r.startups[n-1]))
	}
	fmt.Fprintf(w, "| start-up to serving /versions, empty directory (new key) | | %s |\n", ms(r.firstStart))
	fmt.Fprintf(w, "| disk per 10,000 events (after a clean stop) | | %s allocated, %s apparent (%s and %s in all for ~%d events) |\n",
		per10k(r.diskAllocated), per10k(r.diskApparent), mib(r.diskAllocated), mib(r.diskApparent), events)
	fmt.Fprintf(w, "\nLoad: %d messages in %s (%.0f/s over HTTP, %d workers, synchronous writes).\n",
		r.messages, r.loadTime.Round(time.Millisecond), float64(r.messages)/r.loadTime.Seconds(), loadWorkers)
}

// roomStateEvents is the events createRoom makes with a name and the
// default preset: create, creator's join, power levels, join rules,
// history visibility, name.
const roomStateEvents = 6
