package main

import (
	"cmp"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"math"
	"os"
	"slices"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// A minimal PNG plot: two log-log panels (answered/s and p99 latency
// against offered load), one line per scenario, standard library drawing
// and the x/image basic font.

type pt struct{ x, y float64 }

type series struct {
	name   string
	col    color.RGBA
	pts    []pt // fixed-rate runs, by offered load
	satur  *pt  // the saturating run (Rate=0), drawn as a hollow square
	dashed bool
}

var palette = []color.RGBA{
	{31, 119, 180, 255}, {214, 39, 40, 255}, {44, 160, 44, 255},
	{148, 103, 189, 255}, {255, 127, 14, 255}, {23, 190, 207, 255}, {140, 86, 75, 255}, {127, 127, 127, 255},
}

type canvas struct{ img *image.RGBA }

func (c *canvas) set(x, y int, col color.RGBA) {
	if image.Pt(x, y).In(c.img.Rect) {
		c.img.SetRGBA(x, y, col)
	}
}

func (c *canvas) dot(x, y, r int, col color.RGBA) {
	for dx := -r; dx <= r; dx++ {
		for dy := -r; dy <= r; dy++ {
			if dx*dx+dy*dy <= r*r {
				c.set(x+dx, y+dy, col)
			}
		}
	}
}

// line draws a line of width w; with dash it skips every other 8 px.
func (c *canvas) line(x0, y0, x1, y1 int, w int, col color.RGBA, dash bool) {
	dx, dy := x1-x0, y1-y0
	n := max(abs(dx), abs(dy))
	for i := 0; i <= n; i++ {
		if dash && (i/8)%2 == 1 {
			continue
		}
		x := x0 + int(math.Round(float64(dx*i)/float64(max(n, 1))))
		y := y0 + int(math.Round(float64(dy*i)/float64(max(n, 1))))
		if w <= 1 {
			c.set(x, y, col)
		} else {
			c.dot(x, y, w/2, col)
		}
	}
}

func (c *canvas) rect(x0, y0, x1, y1 int, col color.RGBA) {
	c.line(x0, y0, x1, y0, 1, col, false)
	c.line(x1, y0, x1, y1, 1, col, false)
	c.line(x1, y1, x0, y1, 1, col, false)
	c.line(x0, y1, x0, y0, 1, col, false)
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

var face = basicfont.Face7x13

func textWidth(s string) int { return font.MeasureString(face, s).Round() }

// text draws s with its baseline at y; align -1 left, 0 centre, 1 right.
func (c *canvas) text(x, y int, s string, align int, col color.RGBA) {
	switch align {
	case 0:
		x -= textWidth(s) / 2
	case 1:
		x -= textWidth(s)
	}
	d := &font.Drawer{Dst: c.img, Src: image.NewUniform(col), Face: face, Dot: fixed.P(x, y)}
	d.DrawString(s)
}

// logAxis maps [lo, hi] (after rounding out to 1-2-5 steps) to pixels.
type logAxis struct{ lo, hi float64 }

func newLogAxis(vals []float64) logAxis {
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, v := range vals {
		if v > 0 {
			lo, hi = math.Min(lo, v), math.Max(hi, v)
		}
	}
	if math.IsInf(lo, 1) {
		return logAxis{1, 10}
	}
	return logAxis{niceDown(lo), niceUp(hi * 1.0001)}
}

func niceDown(v float64) float64 {
	d := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{5, 2, 1} {
		if m*d <= v {
			return m * d
		}
	}
	return d
}

func niceUp(v float64) float64 {
	d := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*d >= v {
			return m * d
		}
	}
	return 10 * d
}

func (a logAxis) frac(v float64) float64 {
	return (math.Log10(v) - math.Log10(a.lo)) / (math.Log10(a.hi) - math.Log10(a.lo))
}

func (a logAxis) ticks() []float64 {
	var t []float64
	for d := math.Pow(10, math.Floor(math.Log10(a.lo))); d <= a.hi; d *= 10 {
		for _, m := range []float64{1, 2, 5} {
			if v := m * d; v >= a.lo*0.999 && v <= a.hi*1.001 {
				t = append(t, v)
			}
		}
	}
	return t
}

func tickLabel(v float64) string {
	switch {
	case v >= 1e6:
		return trimf(v/1e6) + "M"
	case v >= 1e3:
		return trimf(v/1e3) + "k"
	default:
		return trimf(v)
	}
}

func trimf(v float64) string {
	if v == math.Trunc(v) {
		return fmt.Sprintf("%.0f", v)
	}
	if v >= 0.1 {
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.2g", v)
}

type panel struct {
	title, xlabel, ylabel string
	series                []series
	diagonal              bool // draw y = x (throughput = offered)
}

var (
	black = color.RGBA{0, 0, 0, 255}
	grey  = color.RGBA{200, 200, 200, 255}
	dgrey = color.RGBA{110, 110, 110, 255}
)

// draw draws p inside r.
func (c *canvas) drawPanel(r image.Rectangle, p panel) {
	var xs, ys []float64
	for _, s := range p.series {
		for _, q := range s.pts {
			xs, ys = append(xs, q.x), append(ys, q.y)
		}
		if s.satur != nil {
			xs, ys = append(xs, s.satur.x), append(ys, s.satur.y)
		}
	}
	ax, ay := newLogAxis(xs), newLogAxis(ys)
	if p.diagonal {
		lo, hi := math.Min(ax.lo, ay.lo), math.Max(ax.hi, ay.hi)
		ax, ay = logAxis{lo, hi}, logAxis{lo, hi}
	}
	// Plot area.
	pa := image.Rect(r.Min.X+70, r.Min.Y+52, r.Max.X-20, r.Max.Y-60)
	X := func(v float64) int { return pa.Min.X + int(ax.frac(v)*float64(pa.Dx())) }
	Y := func(v float64) int { return pa.Max.Y - int(ay.frac(v)*float64(pa.Dy())) }
	c.text((pa.Min.X+pa.Max.X)/2, r.Min.Y+18, p.title, 0, black)
	for _, t := range ax.ticks() {
		x := X(t)
		c.line(x, pa.Min.Y, x, pa.Max.Y, 1, grey, false)
		c.text(x, pa.Max.Y+18, tickLabel(t), 0, black)
	}
	for _, t := range ay.ticks() {
		y := Y(t)
		c.line(pa.Min.X, y, pa.Max.X, y, 1, grey, false)
		c.text(pa.Min.X-6, y+4, tickLabel(t), 1, black)
	}
	c.rect(pa.Min.X, pa.Min.Y, pa.Max.X, pa.Max.Y, black)
	c.text((pa.Min.X+pa.Max.X)/2, pa.Max.Y+40, p.xlabel, 0, black)
	c.text(pa.Min.X, pa.Min.Y-8, p.ylabel, -1, black)
	if p.diagonal {
		c.line(X(ax.lo), Y(ax.lo), X(ax.hi), Y(ax.hi), 1, dgrey, true)
	}
	for _, s := range p.series {
		for i, q := range s.pts {
			if i > 0 {
				c.line(X(s.pts[i-1].x), Y(s.pts[i-1].y), X(q.x), Y(q.y), 2, s.col, s.dashed)
			}
			c.dot(X(q.x), Y(q.y), 3, s.col)
		}
		if s.satur != nil {
			x, y := X(s.satur.x), Y(s.satur.y)
			c.rect(x-5, y-5, x+5, y+5, s.col)
			c.rect(x-4, y-4, x+4, y+4, s.col)
		}
	}
}

// writePlot draws the report's scenarios into a PNG at path.
func writePlot(path string, rep report) error {
	const W, H = 1500, 640
	c := &canvas{img: image.NewRGBA(image.Rect(0, 0, W, H))}
	draw.Draw(c.img, c.img.Rect, image.NewUniform(color.White), image.Point{}, draw.Src)
	var thr, lat []series
	for i, sc := range rep.Scenarios {
		col := palette[i%len(palette)]
		t := series{name: sc.Name, col: col, dashed: sc.Mix != "p2p-chat"}
		l := t
		for _, p := range sc.Phases {
			if p.Label == "max" {
				t.satur = &pt{p.AnsweredPerSec, p.AnsweredPerSec}
				if p.P99Ms > 0 {
					l.satur = &pt{p.AnsweredPerSec, p.P99Ms}
				}
				continue
			}
			t.pts = append(t.pts, pt{p.OfferedPerSec, p.AnsweredPerSec})
			if p.P99Ms > 0 {
				l.pts = append(l.pts, pt{p.OfferedPerSec, p.P99Ms})
			}
		}
		slices.SortFunc(t.pts, func(a, b pt) int { return cmp.Compare(a.x, b.x) })
		slices.SortFunc(l.pts, func(a, b pt) int { return cmp.Compare(a.x, b.x) })
		thr, lat = append(thr, t), append(lat, l)
	}
	left := image.Rect(0, 30, 620, H)
	right := image.Rect(620, 30, 1240, H)
	c.text(W/2, 20, "rtm2kafka end to end: simulator -> bridge (separate process) -> Kafka (acks=all), "+rep.Started.UTC().Format("2006-01-02 15:04 UTC"), 0, black)
	c.drawPanel(left, panel{title: "answered pushes/s vs offered load (log-log)", xlabel: "offered load, pushes/s",
		ylabel: "answered pushes/s", series: thr, diagonal: true})
	c.drawPanel(right, panel{title: "p99 push -> answer latency vs offered load", xlabel: "offered load, pushes/s",
		ylabel: "p99 latency, ms (log)", series: lat})
	// Legend.
	lx, ly := 1255, 80
	c.text(lx, ly, "scenario (body, mix)", -1, black)
	for i, s := range thr {
		y := ly + 24 + i*22
		c.line(lx, y-4, lx+30, y-4, 2, s.col, s.dashed)
		c.dot(lx+15, y-4, 3, s.col)
		c.text(lx+38, y, s.name, -1, black)
	}
	y := ly + 24 + len(thr)*22 + 20
	c.rect(lx+10, y-9, lx+20, y+1, dgrey)
	c.text(lx+38, y, "saturating run", -1, black)
	c.text(lx+38, y+14, "(Rate=0; x = its rate)", -1, black)
	c.line(lx, y+36, lx+30, y+36, 1, dgrey, true)
	c.text(lx+38, y+40, "answered = offered", -1, black)
	c.text(lx, y+70, "dots: fixed-rate runs at", -1, black)
	c.text(lx, y+84, "25/50/75/90% of the max", -1, black)
	c.text(lx, y+98, "solid: all-chat p2p", -1, black)
	c.text(lx, y+112, "dashed: default mix", -1, black)
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := png.Encode(f, c.img); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
