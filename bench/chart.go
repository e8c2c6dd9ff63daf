package bench

import (
	"fmt"
	"image/color"
	"os"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// Colors of the sides in charts.
var sideColors = map[string]color.Color{
	SideOurs:     color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}, // blue
	SideBaseline: color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff}, // red
}

// WriteCompareChart draws a comparison's time series as a PNG: claims/s (top) and p99 of the
// 200 answers (bottom) per interval, one line per round, x from each round's load start.
func WriteCompareChart(path string, res *CompareResults) error {
	rate, p99 := plot.New(), plot.New()
	rate.Title.Text = fmt.Sprintf("bench compare: %s vs baseline (Redis list + RPOP), %s", oursName(res), loadLine(res.Load))
	rate.Y.Label.Text = "claims/s"
	p99.Y.Label.Text = "p99 latency (ms)"
	p99.X.Label.Text = "seconds into the round's load"
	rate.Y.Tick.Marker = commaTicks{}
	for _, p := range []*plot.Plot{rate, p99} {
		p.X.Min, p.Y.Min = 0, 0
		p.Add(plotter.NewGrid())
		p.Legend.Top = true
	}
	for _, r := range res.Rounds {
		if r.Results == nil || len(r.Results.Series) == 0 {
			continue
		}
		label := fmt.Sprintf("%s, round %d", r.Side, r.Round)
		if err := addSeries(rate, p99, r, label); err != nil {
			return err
		}
	}
	// Head room above the lines for the legend (top right).
	rate.Y.Max *= 1 + 0.12*float64(len(res.Rounds))
	p99.Y.Max *= 1 + 0.12*float64(len(res.Rounds))
	const w, h = 10 * vg.Inch, 7 * vg.Inch
	img := vgimg.NewWith(vgimg.UseWH(w, h), vgimg.UseDPI(110), vgimg.UseBackgroundColor(color.White))
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: 2, Cols: 1, PadTop: vg.Points(6), PadBottom: vg.Points(6), PadLeft: vg.Points(6),
		PadRight: vg.Points(12), PadY: vg.Points(10)}
	plots := [][]*plot.Plot{{rate}, {p99}}
	canvases := plot.Align(plots, tiles, dc)
	rate.Draw(canvases[0][0])
	p99.Draw(canvases[1][0])
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func oursName(res *CompareResults) string {
	s := "redrain, " + nodesWord(res.Nodes)
	if res.Machine.Pinned {
		s += ", pinned"
	}
	return s
}

// addSeries adds one round's claims/s and p99 lines; later rounds are dashed.
func addSeries(rate, p99 *plot.Plot, r *CompareRound, label string) error {
	var rs, ps plotter.XYs
	full := r.Results.Series[0].DurationS
	for _, iv := range r.Results.Series {
		if iv.DurationS < full/2 { // the tail after the load's time: only the last stragglers, a spike of nothing
			continue
		}
		rs = append(rs, plotter.XY{X: iv.EndS, Y: iv.ClaimsPerSec})
		ps = append(ps, plotter.XY{X: iv.EndS, Y: float64(iv.P99US) / 1000})
	}
	if len(rs) == 0 {
		return nil
	}
	for _, pair := range []struct {
		p   *plot.Plot
		xys plotter.XYs
	}{{rate, rs}, {p99, ps}} {
		l, err := plotter.NewLine(pair.xys)
		if err != nil {
			return err
		}
		l.Color = sideColors[r.Side]
		l.Width = vg.Points(1.5)
		if r.Round > 1 {
			l.Dashes = []vg.Length{vg.Points(5), vg.Points(3)}
		}
		pair.p.Add(l)
		pair.p.Legend.Add(label, l)
	}
	return nil
}

// commaTicks are the default ticks labelled with thousands separators.
type commaTicks struct{}

func (commaTicks) Ticks(min, max float64) []plot.Tick {
	ts := plot.DefaultTicks{}.Ticks(min, max)
	for i := range ts {
		if ts[i].Label != "" {
			ts[i].Label = Commas(int64(ts[i].Value + 0.5))
		}
	}
	return ts
}
