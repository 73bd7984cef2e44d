package lab

import (
	"fmt"
	"image/color"
	"slices"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// series colours: measured client kinds and the two bounds.
var (
	colShoal = color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}
	colLT    = color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff}
	colHTTP  = color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff}
	colBound = color.RGBA{R: 0x44, G: 0x44, B: 0x44, A: 0xff}
)

// Series groups measurements of one client kind: N -> mean T over runs.
// Pure, so the plot's data can be tested without drawing.
func Series(rs []Result, clients string) plotter.XYs {
	byN := map[int][]float64{}
	for _, r := range rs {
		if r.Clients == clients && r.Seconds > 0 {
			byN[r.N] = append(byN[r.N], r.Seconds)
		}
	}
	ns := make([]int, 0, len(byN))
	for n := range byN {
		ns = append(ns, n)
	}
	slices.Sort(ns)
	xy := make(plotter.XYs, len(ns))
	for i, n := range ns {
		sum := 0.0
		for _, s := range byN[n] {
			sum += s
		}
		xy[i] = plotter.XY{X: float64(n), Y: sum / float64(len(byN[n]))}
	}
	return xy
}

// boundSeries returns d_P2P and d_cs at each N measured (the bounds come
// with every row, so heterogeneous settings plot correctly).
func boundSeries(rs []Result) (p2p, cs plotter.XYs) {
	seen := map[int]bool{}
	var ns []int
	dp, dc := map[int]float64{}, map[int]float64{}
	for _, r := range rs {
		if r.DP2P <= 0 || seen[r.N] {
			continue
		}
		seen[r.N] = true
		ns = append(ns, r.N)
		dp[r.N], dc[r.N] = r.DP2P, r.DCS
	}
	slices.Sort(ns)
	for _, n := range ns {
		p2p = append(p2p, plotter.XY{X: float64(n), Y: dp[n]})
		cs = append(cs, plotter.XY{X: float64(n), Y: dc[n]})
	}
	return p2p, cs
}

// Plot draws distribution time against N — measured shoal, libtorrent and
// HTTP, and the bounds d_P2P and d_cs — and saves it to each path (the
// format follows the extension: .png, .svg, .pdf).
func Plot(rs []Result, title string, paths ...string) error {
	if len(rs) == 0 {
		return fmt.Errorf("plot: no results")
	}
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "N (peers)"
	p.Y.Label.Text = "distribution time (s)"
	p.Y.Min = 0
	p.Legend.Top = true
	p.Legend.Left = true
	p.Add(plotter.NewGrid())

	bp, bc := boundSeries(rs)
	addLine := func(xy plotter.XYs, name string, c color.Color, dashed, points bool, shape draw.GlyphDrawer) error {
		if len(xy) == 0 {
			return nil
		}
		l, err := plotter.NewLine(xy)
		if err != nil {
			return fmt.Errorf("plot %s: %w", name, err)
		}
		l.Color = c
		l.Width = vg.Points(1.5)
		if dashed {
			l.Dashes = []vg.Length{vg.Points(5), vg.Points(3)}
		}
		p.Add(l)
		if !points {
			p.Legend.Add(name, l)
			return nil
		}
		s, err := plotter.NewScatter(xy)
		if err != nil {
			return fmt.Errorf("plot %s: %w", name, err)
		}
		s.GlyphStyle.Color = c
		s.GlyphStyle.Radius = vg.Points(3)
		s.GlyphStyle.Shape = shape
		p.Add(s)
		p.Legend.Add(name, l, s)
		return nil
	}
	steps := []struct {
		xy     plotter.XYs
		name   string
		c      color.Color
		dashed bool
		points bool
		shape  draw.GlyphDrawer
	}{
		{bc, "d_cs (client-server bound)", colHTTP, true, false, nil},
		{bp, "d_P2P (P2P bound)", colBound, true, false, nil},
		{Series(rs, ClientsHTTP), "HTTP, measured", colHTTP, false, true, draw.SquareGlyph{}},
		{Series(rs, ClientsLibtorrent), "libtorrent, measured", colLT, false, true, draw.TriangleGlyph{}},
		{Series(rs, ClientsShoal), "shoal, measured", colShoal, false, true, draw.CircleGlyph{}},
	}
	for _, s := range steps {
		if err := addLine(s.xy, s.name, s.c, s.dashed, s.points, s.shape); err != nil {
			return err
		}
	}
	for _, path := range paths {
		if err := p.Save(7*vg.Inch, 4.5*vg.Inch, path); err != nil {
			return fmt.Errorf("plot: save %s: %w", path, err)
		}
	}
	return nil
}
