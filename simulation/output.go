package simulation

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// WriteOutputs writes report.json, summary.md, latency.svg and
// convergence.svg into dir.
func WriteOutputs(dir string, rep *Report) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("output directory: %w", err)
	}
	raw, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "report.json"), append(raw, '\n'), 0o644); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "summary.md"), []byte(Summary(rep)), 0o644); err != nil {
		return fmt.Errorf("summary: %w", err)
	}
	return writeCharts(dir, rep)
}

// Summary renders the report's key numbers as Markdown.
func Summary(rep *Report) string {
	var b strings.Builder
	s := rep.Scenario
	verdict := "PASSED"
	if !rep.Passed {
		verdict = "FAILED"
	}
	fmt.Fprintf(&b, "# Simulation `%s`: %s\n\n%s\n\n", s.Name, verdict, s.Description)
	if rep.Command != "" {
		fmt.Fprintf(&b, "Command: `%s`\n\n", rep.Command)
	}
	links := fmt.Sprintf("link latency %v, bandwidth %.0f B/s", s.Latency, s.Bandwidth)
	if rep.Mode == ModeQUIC {
		links = "QUIC on 127.0.0.1 (no simulated latency or bandwidth)"
	}
	fmt.Fprintf(&b, "Mode %s, seed %d, %d nodes, %d rooms, %s, traffic %v at %.1f messages/s + %.1f sticky/s; wall time %.0f s.\n\n",
		rep.Mode, rep.Seed, s.Nodes, s.Rooms, links, s.Duration, s.MessagesPerSecond, s.StickyPerSecond, rep.WallSeconds)
	for _, f := range rep.Failures {
		fmt.Fprintf(&b, "- **failure:** %s\n", f)
	}
	d := rep.Delivery
	fmt.Fprintf(&b, "\n| measure | value |\n|---|---|\n")
	fmt.Fprintf(&b, "| events sent (messages / sticky) | %d / %d (send errors %d, skipped ticks %d) |\n", rep.Sent.Messages, rep.Sent.Sticky, rep.Sent.SendErrors, rep.Sent.Skipped)
	fmt.Fprintf(&b, "| deliveries owed / made | %d / %d (%.4f); missing %d, of which sticky %d |\n", d.Expected, d.Delivered, d.Completeness, d.Missing, d.MissingSticky)
	fmt.Fprintf(&b, "| seen by users in /sync | %d of %d delivered |\n", d.SeenBySync, d.Delivered)
	l := rep.Latency
	fmt.Fprintf(&b, "| delivery latency ms (p50 / p90 / p99 / max) | %.0f / %.0f / %.0f / %.0f |\n", l.P50, l.P90, l.P99, l.Max)
	sl := rep.StickyLate
	fmt.Fprintf(&b, "| sticky events to late joiners (owed / made) | %d / %d; latency after join p50 %.0f ms, max %.0f ms |\n", sl.Expected, sl.Delivered, sl.Latency.P50, sl.Latency.Max)
	fmt.Fprintf(&b, "| converged | %v, %.1f s after traffic ended |\n", rep.Convergence.Converged, rep.Convergence.SecondsAfterTraffic)
	var req, bytes int64
	for _, n := range rep.Nodes {
		req += n.Traffic.RequestsSent
		bytes += n.Traffic.BytesSent
	}
	if len(rep.Nodes) > 0 {
		fmt.Fprintf(&b, "| federation requests / bytes sent per node (mean) | %d / %d |\n", req/int64(len(rep.Nodes)), bytes/int64(len(rep.Nodes)))
	}
	m := rep.Memory
	fmt.Fprintf(&b, "| process peak RSS | %.0f MiB |\n| heap per node (approx.) | %.1f MiB |\n", float64(m.PeakRSSBytes)/(1<<20), float64(m.PerNodeHeapApprox)/(1<<20))
	for _, p := range rep.Convergence.Problems {
		fmt.Fprintf(&b, "\n- %s", p)
	}
	b.WriteString("\n\nCharts: `latency.svg` (delivery latency histogram), `convergence.svg` (fraction of owed events seen and of rooms in agreement, per second; dashed lines are steps). All numbers: `report.json`.\n")
	return b.String()
}
