package main

import (
	"fmt"
	"image/color"
	"os"
	"slices"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"
)

var (
	outageShade = color.NRGBA{R: 220, G: 60, B: 60, A: 60}
	signedColor = color.RGBA{R: 40, G: 90, B: 200, A: 255}
	provColor   = color.RGBA{R: 20, G: 150, B: 70, A: 255}
)

// drawRecovery draws one panel per storm, side by side: users signed up
// and users provisioned over time, the outage shaded.
func drawRecovery(path string, storms []storm, tls []*timeline) error {
	plot.DefaultFont.Variant = "Sans"
	plotter.DefaultFont.Variant = "Sans"
	row := make([]*plot.Plot, len(tls))
	for i, tl := range tls {
		p, err := panel(storms[i], tl)
		if err != nil {
			return err
		}
		row[i] = p
	}
	w, h := vg.Length(len(row))*13*vg.Centimeter, 10*vg.Centimeter
	img := vgsvg.New(w, h)
	tiles := draw.Tiles{Rows: 1, Cols: len(row), PadX: vg.Centimeter, PadTop: vg.Millimeter * 2, PadBottom: vg.Millimeter * 2,
		PadLeft: vg.Millimeter * 2, PadRight: vg.Millimeter * 4}
	canvases := plot.Align([][]*plot.Plot{row}, tiles, draw.New(img))
	for i, p := range row {
		p.Draw(canvases[0][i])
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := img.WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// panel is one storm's chart.
func panel(s storm, tl *timeline) (*plot.Plot, error) {
	end := tl.OutageEnd
	if len(tl.Provisioned) > 0 {
		end = max(end, slices.Max(tl.Provisioned))
	}
	end += 2
	top := float64(s.N) * 1.45 // room for the legend above the lines
	p := plot.New()
	recovery, _ := lastAfterRecovery(s, tl)
	p.Title.Text = fmt.Sprintf("Kandy down %.0f s\nall %d provisioned %.1f s after it came back", s.Outage.Seconds(), s.N, recovery.Seconds())
	if len(tl.Provisioned) < s.N {
		p.Title.Text = fmt.Sprintf("Kandy down %.0f s\n%d of %d provisioned", s.Outage.Seconds(), len(tl.Provisioned), s.N)
	}
	p.X.Label.Text, p.Y.Label.Text = "seconds since the first sign-up", "users"
	p.X.Min, p.X.Max, p.Y.Min, p.Y.Max = 0, end, 0, top
	shade, err := plotter.NewPolygon(plotter.XYs{{X: tl.OutageStart, Y: 0}, {X: tl.OutageEnd, Y: 0}, {X: tl.OutageEnd, Y: top}, {X: tl.OutageStart, Y: top}})
	if err != nil {
		return nil, err
	}
	shade.Color, shade.LineStyle.Width = outageShade, 0
	signed, err := cumulative(tl.SignedUp, end, signedColor)
	if err != nil {
		return nil, err
	}
	provisioned, err := cumulative(tl.Provisioned, end, provColor)
	if err != nil {
		return nil, err
	}
	p.Add(shade, plotter.NewGrid(), signed, provisioned)
	p.Legend.Add("signed up (confirmed)", signed)
	p.Legend.Add("provisioned (Kandy account stored)", provisioned)
	p.Legend.Add("Kandy down", shade)
	p.Legend.Top, p.Legend.Left = true, false
	p.Legend.YOffs = -vg.Millimeter * 2
	p.Y.Tick.Marker = userTicks(s.N)
	return p, nil
}

// cumulative is a step line of how many times came by each moment, from
// 0 to end.
func cumulative(times []float64, end float64, c color.Color) (*plotter.Line, error) {
	sorted := slices.Clone(times)
	slices.Sort(sorted)
	xys := plotter.XYs{{X: 0, Y: 0}}
	for i, t := range sorted {
		xys = append(xys, plotter.XY{X: t, Y: float64(i + 1)})
	}
	xys = append(xys, plotter.XY{X: end, Y: float64(len(sorted))})
	l, err := plotter.NewLine(xys)
	if err != nil {
		return nil, err
	}
	l.StepStyle, l.Color, l.Width = plotter.PostStep, c, vg.Points(1.6)
	return l, nil
}

// userTicks marks 0 to n in about four whole steps.
func userTicks(n int) plot.Ticker {
	step := max(1, (n+3)/4)
	return plot.TickerFunc(func(_, _ float64) []plot.Tick {
		var ticks []plot.Tick
		for v := 0; v < n+step; v += step {
			ticks = append(ticks, plot.Tick{Value: float64(min(v, n)), Label: fmt.Sprint(min(v, n))})
		}
		return ticks
	})
}
