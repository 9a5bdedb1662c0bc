package dashboard

import (
	"encoding/xml"
	"errors"
	"fmt"
	"html/template"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/go-analyze/charts"
)

// Chart geometry and limits.
const (
	chartWidth  = 760
	chartHeight = 320
	// maxBarPeriods: up to this many periods a chart has grouped bars,
	// beyond it lines.
	maxBarPeriods = 16
	// maxChartSeries is the most sites one chart compares.
	maxChartSeries = 8
	// maxSVGBytes bounds what the sanitiser reads.
	maxSVGBytes = 4 << 20
)

// chartPalette tells the series apart for most colour-blind readers
// (Okabe and Ito), darkest first; a chart never relies on colour alone: the
// legend names each site and a table gives every value.
var chartPalette = []charts.Color{
	charts.ColorFromHex("0072B2"), charts.ColorFromHex("D55E00"), charts.ColorFromHex("009E73"),
	charts.ColorFromHex("CC79A7"), charts.ColorFromHex("000000"), charts.ColorFromHex("E69F00"),
	charts.ColorFromHex("56B4E9"), charts.ColorFromHex("8C6D1F"),
}

var chartTheme = charts.GetTheme(charts.ThemeLight).
	WithSeriesColors(chartPalette).
	WithTextColor(charts.ColorFromHex("222222")).
	WithBackgroundColor(charts.ColorFromHex("FFFFFF"))

// chartSpec is one usage chart: a value per period (Labels) per site
// (Series).
type chartSpec struct {
	ID     string // element id of its heading
	Title  string
	Labels []string
	Series []string
	Values [][]float64 // [series][period]
}

// renderChart draws c as SVG, grouped bars or lines, and returns it ready
// to embed in the page (see sanitizeSVG), labelled by the element c.ID.
func renderChart(c chartSpec) (template.HTML, error) {
	if len(c.Series) == 0 || len(c.Labels) == 0 {
		return "", errors.New("dashboard: a chart needs series and periods")
	}
	p := charts.NewPainter(charts.PainterOptions{
		OutputFormat: charts.ChartOutputSVG, Width: chartWidth, Height: chartHeight, Theme: chartTheme,
	})
	legend := charts.LegendOption{SeriesNames: c.Series, Offset: charts.OffsetRight}
	// Counts: whole steps from zero (1, 2 or 5 times a power of ten), so
	// that no axis label reads "2.5 pages".
	top := 0.0
	for _, s := range c.Values {
		for _, v := range s {
			top = max(top, v)
		}
	}
	step := countStep(top)
	yAxis := charts.YAxisOption{
		Min: charts.Ptr(0.0), Max: charts.Ptr(step * chartSteps), LabelCount: chartSteps + 1,
		PreferNiceIntervals: charts.Ptr(false), ValueFormatter: countFormat,
	}
	var err error
	if len(c.Labels) <= maxBarPeriods {
		opt := charts.NewBarChartOptionWithData(c.Values)
		opt.Theme = chartTheme
		opt.CategoryAxis.Labels = c.Labels
		opt.CategoryAxis.LabelRotation = labelRotation(len(c.Labels))
		opt.ValueAxis = []charts.ValueAxisOption{yAxis}
		opt.Legend = legend
		opt.ValueFormatter = countFormat
		err = p.BarChart(opt)
	} else {
		opt := charts.NewLineChartOptionWithData(c.Values)
		opt.Theme = chartTheme
		opt.XAxis.Labels = c.Labels
		opt.XAxis.LabelRotation = labelRotation(len(c.Labels))
		opt.YAxis = []charts.YAxisOption{yAxis}
		opt.Legend = legend
		opt.ValueFormatter = countFormat
		opt.LineStrokeWidth = 2
		err = p.LineChart(opt)
	}
	if err != nil {
		return "", fmt.Errorf("dashboard: drawing the chart %q: %w", c.Title, err)
	}
	svg, err := p.Bytes()
	if err != nil {
		return "", fmt.Errorf("dashboard: drawing the chart %q: %w", c.Title, err)
	}
	return sanitizeSVG(strings.NewReader(string(svg)), c.ID)
}

// labelRotation slants the period labels when there are many, so that
// they do not overlap.
func labelRotation(n int) float64 {
	if n > 6 {
		return charts.DegreesToRadians(-30)
	}
	return 0
}

// chartSteps is the number of intervals of a value axis.
const chartSteps = 5

// countStep returns the least step of 1, 2 or 5 times a power of ten such
// that chartSteps steps reach top.
func countStep(top float64) float64 {
	for p := 1.0; ; p *= 10 {
		for _, m := range []float64{1, 2, 5} {
			if m*p*chartSteps >= top {
				return m * p
			}
		}
	}
}

// countFormat shows axis values as whole numbers when they are, with one
// decimal otherwise.
func countFormat(f float64) string {
	if f == math.Trunc(f) {
		return strconv.FormatFloat(f, 'f', 0, 64)
	}
	return strconv.FormatFloat(f, 'f', 1, 64)
}

// svgElements are the elements an embedded chart may hold.
var svgElements = map[string]bool{
	"svg": true, "g": true, "path": true, "text": true, "tspan": true, "circle": true, "ellipse": true,
	"rect": true, "line": true, "polyline": true, "polygon": true,
}

// svgAttributes are the attributes an embedded chart may hold (besides
// style, which is rewritten).
var svgAttributes = map[string]bool{
	"viewBox": true, "width": true, "height": true, "d": true, "x": true, "y": true, "dx": true, "dy": true,
	"x1": true, "y1": true, "x2": true, "y2": true, "cx": true, "cy": true, "r": true, "rx": true, "ry": true,
	"points": true, "transform": true,
}

// svgPresentation are the style properties that are also SVG presentation
// attributes: a style attribute becomes these attributes, which the page's
// Content-Security-Policy (style-src 'self') does not block.
var svgPresentation = map[string]bool{
	"fill": true, "fill-opacity": true, "fill-rule": true, "stroke": true, "stroke-width": true,
	"stroke-opacity": true, "stroke-dasharray": true, "stroke-linecap": true, "stroke-linejoin": true,
	"opacity": true, "font-size": true, "font-family": true, "font-weight": true, "font-style": true,
	"text-anchor": true, "dominant-baseline": true,
}

// sanitizeSVG re-encodes an SVG document for embedding in a page: only
// the elements and attributes of the allow-lists pass (anything else is
// dropped with its content), style attributes become presentation
// attributes, no value may refer to anything (url(...)), and the root gets
// role="img" and aria-labelledby=labelledBy.
func sanitizeSVG(r io.Reader, labelledBy string) (template.HTML, error) {
	dec := xml.NewDecoder(io.LimitReader(r, maxSVGBytes))
	var b strings.Builder
	skip, depth := 0, 0 // skip > 0: inside a dropped element
	rooted := false
	for {
		tok, err := dec.RawToken()
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", fmt.Errorf("dashboard: chart SVG: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			name := t.Name.Local
			if depth == 0 && skip == 0 && rooted {
				return "", errors.New("dashboard: chart SVG: not one <svg> root")
			}
			if skip > 0 || t.Name.Space != "" || !svgElements[name] {
				skip++
				continue
			}
			b.WriteString("<" + name)
			if depth == 0 {
				if name != "svg" {
					return "", errors.New("dashboard: chart SVG: the root is not <svg>")
				}
				rooted = true
				fmt.Fprintf(&b, ` role="img" aria-labelledby="%s" focusable="false"`, template.HTMLEscapeString(labelledBy))
			}
			for _, a := range t.Attr {
				switch {
				case a.Name.Space != "":
				case a.Name.Local == "style":
					for decl := range strings.SplitSeq(a.Value, ";") {
						k, v, ok := strings.Cut(decl, ":")
						k, v = strings.TrimSpace(k), strings.TrimSpace(v)
						if ok && svgPresentation[k] && safeSVGValue(v) {
							writeAttr(&b, k, v)
						}
					}
				case svgAttributes[a.Name.Local] && safeSVGValue(a.Value):
					writeAttr(&b, a.Name.Local, a.Value)
				}
			}
			b.WriteString(">")
			depth++
		case xml.EndElement:
			if skip > 0 {
				skip--
				continue
			}
			depth--
			b.WriteString("</" + t.Name.Local + ">")
		case xml.CharData:
			if skip == 0 && depth > 0 {
				b.WriteString(template.HTMLEscapeString(string(t)))
			}
		}
	}
	if depth != 0 || b.Len() == 0 {
		return "", errors.New("dashboard: chart SVG: truncated or empty")
	}
	return template.HTML(b.String()), nil
}

func writeAttr(b *strings.Builder, k, v string) {
	b.WriteString(" " + k + `="` + template.HTMLEscapeString(v) + `"`)
}

// safeSVGValue refuses values that could refer to another resource.
func safeSVGValue(v string) bool {
	l := strings.ToLower(v)
	return len(v) < 64<<10 && !strings.Contains(l, "url(") && !strings.Contains(l, "javascript:") &&
		!strings.ContainsAny(v, "<>")
}
