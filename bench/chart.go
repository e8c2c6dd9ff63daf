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

// WriteCompareChart draws a comparison as a PNG: claims/s (top) and p99 of the 200 answers
// (middle) per interval, one line per round, x from each round's load start; below, each
// side's totals as bars: claims/s beside what one Redis absorbs, p50 and p99, and the CPU per
// claim of the servers, of Redis and of the load driver.
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
	bars, err := totalsBars(res)
	if err != nil {
		return err
	}
	const w, h = 11 * vg.Inch, 10 * vg.Inch
	img := vgimg.NewWith(vgimg.UseWH(w, h), vgimg.UseDPI(110), vgimg.UseBackgroundColor(color.White))
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: 2, Cols: 1, PadTop: vg.Points(6), PadBottom: vg.Points(6), PadLeft: vg.Points(6),
		PadRight: vg.Points(12), PadY: vg.Points(10)}
	top := draw.Crop(dc, 0, 0, 0.36*h, 0) // the lines above, the bars in the bottom 36%
	lines := plot.Align([][]*plot.Plot{{rate}, {p99}}, tiles, top)
	rate.Draw(lines[0][0])
	p99.Draw(lines[1][0])
	tiles = draw.Tiles{Rows: 1, Cols: len(bars), PadTop: vg.Points(14), PadBottom: vg.Points(6), PadLeft: vg.Points(6),
		PadRight: vg.Points(12), PadX: vg.Points(16)}
	bottom := draw.Crop(dc, 0, 0, 0, -0.64*h)
	for i, c := range plot.Align([][]*plot.Plot{bars}, tiles, bottom)[0] {
		bars[i].Draw(c)
	}
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

// barGroup is one panel of totals: a bar per side for each of its figures.
type barGroup struct {
	title, unit string
	names       []string                      // the figures
	values      func(f SideFigures) []float64 // in the panel's unit, one per name
	label       func(v float64) string
}

func totalsBars(res *CompareResults) ([]*plot.Plot, error) {
	ms := func(us int64) float64 { return float64(us) / 1000 }
	groups := []barGroup{
		{"claims/s, and what one Redis absorbs", "claims/s", []string{"measured", "one Redis absorbs"},
			func(f SideFigures) []float64 { return []float64{f.ClaimsPerSec, f.RedisAbsorbs} },
			func(v float64) string { return Commas(int64(v + 0.5)) }},
		{"latency of a claim", "ms", []string{"p50", "p99"},
			func(f SideFigures) []float64 { return []float64{ms(f.P50US), ms(f.P99US)} },
			func(v float64) string { return fmt.Sprintf("%.2f", v) }},
		{"CPU per claim", "µs", []string{"server", "Redis", "load driver"},
			func(f SideFigures) []float64 {
				return []float64{f.ServerUSPerClaim, f.RedisUSPerClaim, f.LoadUSPerClaim}
			},
			func(v float64) string { return fmt.Sprintf("%.1f", v) }},
	}
	out := make([]*plot.Plot, len(groups))
	for i, g := range groups {
		p, err := g.plot(res)
		if err != nil {
			return nil, err
		}
		out[i] = p
	}
	return out, nil
}

// plot draws the group's bars, ours left of the baseline, each labelled with its value.
func (g barGroup) plot(res *CompareResults) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = g.title
	p.Y.Label.Text = g.unit
	p.Y.Min = 0
	p.Y.Tick.Marker = commaTicks{}
	p.Legend.Top = true
	p.NominalX(g.names...)
	width := vg.Points(26)
	for i, side := range []struct {
		name string
		f    SideFigures
	}{{SideOurs, res.Ours}, {SideBaseline, res.Baseline}} {
		vs := g.values(side.f)
		b, err := plotter.NewBarChart(plotter.Values(vs), width)
		if err != nil {
			return nil, err
		}
		b.Color, b.LineStyle.Width = sideColors[side.name], 0
		b.Offset = width * vg.Length(2*i-1) / 2
		labels, err := barLabels(vs, g.label)
		if err != nil {
			return nil, err
		}
		labels.Offset = vg.Point{X: b.Offset, Y: vg.Points(2)}
		p.Add(b, labels)
		p.Legend.Add(side.name, b)
	}
	p.Y.Max *= 1.3 // room for the labels and the legend
	return p, nil
}

func barLabels(vs []float64, label func(float64) string) (*plotter.Labels, error) {
	xys := make(plotter.XYs, len(vs))
	texts := make([]string, len(vs))
	for i, v := range vs {
		xys[i] = plotter.XY{X: float64(i), Y: v}
		texts[i] = label(v)
		if v <= 0 {
			texts[i] = "-"
		}
	}
	l, err := plotter.NewLabels(plotter.XYLabels{XYs: xys, Labels: texts})
	if err != nil {
		return nil, err
	}
	for i := range l.TextStyle {
		l.TextStyle[i].XAlign = draw.XCenter
		l.TextStyle[i].Font.Size = vg.Points(8)
	}
	return l, nil
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
