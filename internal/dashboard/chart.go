package dashboard

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Charts are drawn on the server as SVG. The geometry is computed here;
// the SVG is written by the chart templates in partials.html, so every
// label is escaped like any other text; colours come from classes in
// style.css (the Content-Security-Policy forbids inline styles). A chart is
// as wide as its card and a fixed height in CSS pixels: horizontal
// positions are percentages, the lines are drawn in a stretched inner SVG
// whose strokes do not scale, so text stays the same size on a phone and
// on a desktop. Each chart carries its numbers as a table too, for screen
// readers and for copying.

// Time chart geometry, in CSS pixels.
const (
	chartH    = 240.0
	chartTop  = 22.0
	chartPlot = 206.0 // the bottom of the plot; x labels sit below
	// plotW is the width of the inner SVG's coordinate system, which
	// is stretched to the chart's width.
	plotW = 1000.0
)

// Series is one line or band of a chart.
type Series struct {
	Name   string
	Class  string // a CSS class giving its colour: s-installs, s-failures, s-stalled, s0…s7
	Values []float64
}

// Tick is a y axis label and its grid line.
type Tick struct {
	Pos   float64
	Label string
}

// XTick is an x axis label at a percent of the width.
type XTick struct {
	Pct    float64
	Label  string
	Anchor string // start, middle or end: the first and last labels stay inside
	Minor  bool   // hidden on narrow screens
}

// Dot is a data point with its tooltip, at a percent of the width.
type Dot struct {
	Pct, Y float64
	Class  string
	Title  string
}

// Line is a series drawn as a line, with its area when Area is set.
type Line struct {
	Name, Class string
	Points      string // polyline points in the inner SVG
	Area        string // path of the area under the line, "" for none
	Dots        []Dot
}

// Band is a series drawn as a stacked area.
type Band struct {
	Name, Class string
	Path        string
}

// TimeChart is a chart of values over time steps.
type TimeChart struct {
	ID, Title, Desc string
	H, Top, Plot    float64
	PlotW           float64
	YTicks          []Tick
	XTicks          []XTick
	Lines           []Line
	Bands           []Band
	// Head and Rows are the data table.
	Head []string
	Rows [][]string
}

// niceStep is the smallest of 1, 2, 2.5 and 5 times a power of ten that
// is at least raw.
func niceStep(raw float64) float64 {
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*mag >= raw*(1-1e-9) {
			return m * mag
		}
	}
	return 10 * mag
}

// niceMax rounds max up for a count axis of four steps, and returns that
// and the step; counts of devices are whole, so the step is at least 1.
func niceMax(max float64) (top, step float64) {
	if max <= 0 || math.IsNaN(max) {
		return 4, 1
	}
	step = math.Max(1, niceStep(max/4))
	return step * math.Ceil(max/step-1e-9), step
}

// stepLabel formats the start of a step for the x axis: hours within a
// day (with the date at midnight and on the first label), dates beyond.
func stepLabel(t time.Time, step time.Duration, first bool) string {
	t = t.UTC()
	switch {
	case step >= 24*time.Hour:
		return t.Format("Jan 2")
	case first || (t.Hour() == 0 && t.Minute() == 0):
		return t.Format("Jan 2, 15:04")
	}
	return t.Format("15:04")
}

// stepRange is a step's span, for tooltips and the data table.
func stepRange(t time.Time, step time.Duration) string {
	t = t.UTC()
	if step >= 24*time.Hour {
		return t.Format("Jan 2")
	}
	return t.Format("Jan 2 15:04") + "–" + t.Add(step).Format("15:04")
}

func newChart(id, title string) *TimeChart {
	return &TimeChart{ID: id, Title: title, H: chartH, Top: chartTop, Plot: chartPlot, PlotW: plotW}
}

// xAt is the x of the centre of step i of n in the inner SVG.
func xAt(i, n int) float64 { return (float64(i) + 0.5) * plotW / float64(n) }

func (c *TimeChart) yAt(v, top float64) float64 { return c.Plot - v/top*(c.Plot-c.Top) }

// xTicks labels about six steps, every other one minor.
func (c *TimeChart) xTicks(starts []time.Time, step time.Duration) {
	n := len(starts)
	every := max(1, int(math.Ceil(float64(n)/6)))
	k := 0
	for i := 0; i < n; i += every {
		t := XTick{Pct: xAt(i, n) / plotW * 100, Label: stepLabel(starts[i], step, i == 0), Anchor: "middle", Minor: k%2 == 1}
		if i == 0 {
			t.Pct, t.Anchor = 0, "start"
		}
		c.XTicks = append(c.XTicks, t)
		k++
	}
}

func num(f float64) string { return strconv.FormatFloat(f, 'f', 1, 64) }

func count(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

func firstOr(ts []time.Time) time.Time {
	if len(ts) == 0 {
		return time.Time{}
	}
	return ts[0]
}

// NewTimeChart draws count series over time steps as lines, the first
// one with its area filled.
func NewTimeChart(id, title string, starts []time.Time, step time.Duration, series []Series) *TimeChart {
	c := newChart(id, title)
	n := len(starts)
	most := 0.0
	for _, s := range series {
		for _, v := range s.Values {
			most = math.Max(most, v)
		}
	}
	top, tick := niceMax(most)
	for v := 0.0; v <= top+tick/2; v += tick {
		c.YTicks = append(c.YTicks, Tick{Pos: c.yAt(v, top), Label: count(v)})
	}
	c.xTicks(starts, step)
	c.Head = []string{"Time (UTC)"}
	var totals []string
	for si, s := range series {
		c.Head = append(c.Head, s.Name)
		l := Line{Name: s.Name, Class: s.Class}
		var pts []string
		sum := 0.0
		for i := 0; i < n; i++ {
			v := valueAt(s.Values, i)
			sum += v
			x, y := xAt(i, n), c.yAt(v, top)
			pts = append(pts, num(x)+","+num(y))
			if v != 0 { // a dot on every empty step would be noise
				l.Dots = append(l.Dots, Dot{Pct: x / plotW * 100, Y: y, Class: s.Class,
					Title: fmt.Sprintf("%s: %s %s", stepRange(starts[i], step), count(v), unit(s.Name, v))})
			}
		}
		l.Points = strings.Join(pts, " ")
		if si == 0 && n > 0 {
			l.Area = fmt.Sprintf("M%s,%s L%s L%s,%s Z", num(xAt(0, n)), num(c.Plot), l.Points, num(xAt(n-1, n)), num(c.Plot))
		}
		c.Lines = append(c.Lines, l)
		totals = append(totals, count(sum)+" "+unit(s.Name, sum))
	}
	c.Desc = fmt.Sprintf("%s, %d steps from %s: %s.", title, n, stepRange(firstOr(starts), step), strings.Join(totals, ", "))
	for i := 0; i < n; i++ {
		row := []string{stepRange(starts[i], step)}
		for _, s := range series {
			row = append(row, count(valueAt(s.Values, i)))
		}
		c.Rows = append(c.Rows, row)
	}
	return c
}

// unit is a series name as the unit of n: "1 install", "2 installs".
func unit(name string, n float64) string {
	u := strings.ToLower(name)
	if n == 1 {
		u = strings.TrimSuffix(u, "s")
	}
	return u
}

func valueAt(vs []float64, i int) float64 {
	if i < len(vs) {
		return vs[i]
	}
	return 0
}

// NewStackedChart draws shares (each step's values summing to at most 1)
// as stacked bands, the first series at the bottom: the adoption of
// versions over time.
func NewStackedChart(id, title string, starts []time.Time, step time.Duration, series []Series) *TimeChart {
	c := newChart(id, title)
	n := len(starts)
	for v := 0.0; v <= 1.0001; v += 0.25 {
		c.YTicks = append(c.YTicks, Tick{Pos: c.yAt(v, 1), Label: pct(v)})
	}
	c.xTicks(starts, step)
	base := make([]float64, n)
	c.Head = []string{"Time (UTC)"}
	for _, s := range series {
		c.Head = append(c.Head, s.Name)
		top := make([]float64, n)
		up := make([]string, 0, n+2)
		down := make([]string, 0, n+2)
		for i := 0; i < n; i++ {
			top[i] = math.Min(1, base[i]+math.Max(0, valueAt(s.Values, i)))
			up = append(up, num(xAt(i, n))+","+num(c.yAt(top[i], 1)))
		}
		for i := n - 1; i >= 0; i-- {
			down = append(down, num(xAt(i, n))+","+num(c.yAt(base[i], 1)))
		}
		if n > 0 {
			c.Bands = append(c.Bands, Band{Name: s.Name, Class: s.Class,
				Path: "M" + strings.Join(up, " L") + " L" + strings.Join(down, " L") + " Z"})
		}
		base = top
	}
	for i := 0; i < n; i++ {
		row := []string{stepRange(starts[i], step)}
		for _, s := range series {
			row = append(row, pct(valueAt(s.Values, i)))
		}
		c.Rows = append(c.Rows, row)
	}
	var names []string
	for _, s := range series {
		names = append(names, s.Name)
	}
	c.Desc = fmt.Sprintf("%s: the share of devices on %s, %d steps from %s.", title, strings.Join(names, ", "), n, stepRange(firstOr(starts), step))
	return c
}

// RateRow is one version's bar of a RateChart, in percent of the scale.
type RateRow struct {
	Version    string
	Failed     int
	Devices    int
	Rate       string  // the failure rate, formatted
	FailPct    float64 // the failure bar's width
	Stalled    string  // the stalled rate, "" until otad tracks it
	StalledPct float64 // the stalled bar's width, after the failure bar
	Over       bool    // at or over the halt threshold
	Title      string
}

// RateChart shows each version's failure rate (and its stalled rate, once
// known) as a bar against the channel's halt threshold.
type RateChart struct {
	Title, Desc  string
	Rows         []RateRow
	Threshold    float64 // the threshold line, in percent of the scale; 0 for none
	ThresholdPct string  // the threshold, formatted
	Scale        string  // the rate at the right end of the bars, formatted
}

// RateInput is one version's numbers for NewRateChart.
type RateInput struct {
	Version string
	Failed  int
	Devices int
	Rate    float64
	Stalled *float64 // the stalled rate; nil until otad tracks it
}

// NewRateChart draws rates on a scale that shows threshold (0: none) with
// room to spare and the highest rate in full.
func NewRateChart(title string, rows []RateInput, threshold float64) *RateChart {
	c := &RateChart{Title: title}
	most := threshold * 1.5
	for _, r := range rows {
		v := r.Rate
		if r.Stalled != nil {
			v += *r.Stalled
		}
		most = math.Max(most, v)
	}
	if most <= 0 {
		most = 0.2
	}
	scale := math.Min(1, niceStep(most/4)*4)
	if scale < most {
		scale = math.Min(1, niceStep(most/2)*2)
	}
	at := func(v float64) float64 { return math.Min(100, v/scale*100) }
	c.Scale = pct(scale)
	if threshold > 0 {
		c.Threshold, c.ThresholdPct = at(threshold), pct(threshold)
	}
	var parts []string
	for _, r := range rows {
		row := RateRow{Version: r.Version, Failed: r.Failed, Devices: r.Devices, Rate: pct(r.Rate), FailPct: at(r.Rate),
			Over: threshold > 0 && r.Rate >= threshold}
		row.Title = fmt.Sprintf("%s: %d of %d devices failed (%s)", r.Version, r.Failed, r.Devices, row.Rate)
		if r.Stalled != nil {
			row.Stalled = pct(*r.Stalled)
			row.StalledPct = at(r.Rate+*r.Stalled) - row.FailPct
			row.Title += ", " + row.Stalled + " stalled"
		}
		c.Rows = append(c.Rows, row)
		parts = append(parts, r.Version+" "+row.Rate)
	}
	c.Desc = title + ": " + strings.Join(parts, ", ")
	if threshold > 0 {
		c.Desc += "; the channel halts a release at " + pct(threshold) + "."
	}
	return c
}
