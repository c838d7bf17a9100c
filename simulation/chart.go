package simulation

import (
	"fmt"
	"path/filepath"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// writeCharts writes latency.svg (histogram of delivery latency) and
// convergence.svg (delivered fraction and rooms in agreement over time)
// into dir.
func writeCharts(dir string, rep *Report) error {
	if len(rep.latencies) > 0 {
		p := plot.New()
		p.Title.Text = fmt.Sprintf("%s: delivery latency (%d deliveries, p50 %.0f ms, p99 %.0f ms)", rep.Scenario.Name, rep.Latency.Count, rep.Latency.P50, rep.Latency.P99)
		p.X.Label.Text = "latency (ms)"
		p.Y.Label.Text = "deliveries"
		h, err := plotter.NewHist(plotter.Values(rep.latencies), 40)
		if err != nil {
			return fmt.Errorf("latency histogram: %w", err)
		}
		p.Add(h)
		if err := p.Save(8*vg.Inch, 4*vg.Inch, filepath.Join(dir, "latency.svg")); err != nil {
			return fmt.Errorf("latency chart: %w", err)
		}
	}
	if len(rep.Timeline) == 0 {
		return nil
	}
	p := plot.New()
	p.Title.Text = rep.Scenario.Name + ": delivery and convergence over time"
	p.X.Label.Text = "seconds since traffic start"
	p.Y.Label.Text = "fraction"
	p.Y.Min, p.Y.Max = 0, 1.05
	delivered := make(plotter.XYs, len(rep.Timeline))
	agreeing := make(plotter.XYs, len(rep.Timeline))
	for i, s := range rep.Timeline {
		delivered[i] = plotter.XY{X: s.T, Y: s.Delivered}
		agreeing[i] = plotter.XY{X: s.T, Y: s.RoomsAgreeing}
	}
	if err := plotutil.AddLines(p, "events delivered (seen in /sync)", delivered, "rooms whose members agree", agreeing); err != nil {
		return fmt.Errorf("convergence lines: %w", err)
	}
	p.Legend.Top, p.Legend.Left = false, false
	for _, st := range rep.Steps {
		l, err := plotter.NewLine(plotter.XYs{{X: st.StartedAt, Y: 0}, {X: st.StartedAt, Y: 1.05}})
		if err != nil {
			return err
		}
		l.Dashes = []vg.Length{vg.Points(2), vg.Points(2)}
		p.Add(l)
		lbl, err := plotter.NewLabels(plotter.XYLabels{XYs: plotter.XYs{{X: st.StartedAt, Y: 0.02}}, Labels: []string{st.Action}})
		if err != nil {
			return err
		}
		p.Add(lbl)
	}
	if err := p.Save(8*vg.Inch, 4*vg.Inch, filepath.Join(dir, "convergence.svg")); err != nil {
		return fmt.Errorf("convergence chart: %w", err)
	}
	return nil
}
