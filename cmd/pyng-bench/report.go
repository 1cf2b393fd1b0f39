package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"time"
)

// report is the JSON file: the machine, the settings, and per engine its rows and soak.
type report struct {
	StartedAt  time.Time      `json:"startedAt"`
	Took       string         `json:"took"`
	GoVersion  string         `json:"goVersion"`
	CPUs       int            `json:"cpus"`
	Duration   string         `json:"durationPerScenario"`
	Soak       string         `json:"soak"`
	Engines    []engineReport `json:"engines"`
	TargetsMet int            `json:"targetsMet"`
	Targets    int            `json:"targets"`
}

type engineReport struct {
	Engine string `json:"engine"`
	Rows   []row  `json:"rows"`
	Soak   *soak  `json:"soak,omitempty"`
	// ServerPeakRSSMB is the server process's peak RSS over the whole run (VmHWM).
	ServerPeakRSSMB float64 `json:"serverPeakRssMB"`
	// ServerLogErrors counts the server log's ERROR lines (internal errors).
	ServerLogErrors int    `json:"serverLogErrors"`
	Error           string `json:"error,omitempty"`
}

// row is one figure of a scenario beside its baseline.
type row struct {
	Scenario string `json:"scenario"`
	// Metric is the unit of Figure and Baseline: req/s, rows/s or p50 ms.
	Metric   string  `json:"metric"`
	Figure   float64 `json:"figure"`
	Baseline float64 `json:"baseline"`
	// Ratio is Figure / Baseline.
	Ratio  float64 `json:"ratio"`
	Target *target `json:"target,omitempty"`
	Met    *bool   `json:"met,omitempty"`
	// The server's and the baseline's latencies, in milliseconds, and how many operations each
	// completed and how many of the server's failed.
	P50Ms         float64 `json:"p50Ms"`
	P99Ms         float64 `json:"p99Ms"`
	BaselineP50Ms float64 `json:"baselineP50Ms"`
	BaselineP99Ms float64 `json:"baselineP99Ms"`
	Ops           int     `json:"ops"`
	BaselineOps   int     `json:"baselineOps"`
	Errors        int     `json:"errors"`
	FirstError    string  `json:"firstError,omitempty"`
	// PeakRSSMB is the server's peak RSS during the scenario.
	PeakRSSMB float64 `json:"peakRssMB"`
}

// target is the bound set on a ratio: at least or at most Value.
type target struct {
	AtLeast bool    `json:"atLeast"`
	Value   float64 `json:"value"`
}

func (t target) String() string {
	if t.AtLeast {
		return fmt.Sprintf("≥ %g", t.Value)
	}
	return fmt.Sprintf("≤ %g", t.Value)
}

func (t target) met(ratio float64) bool {
	if t.AtLeast {
		return ratio >= t.Value
	}
	return ratio > 0 && ratio <= t.Value
}

// newRow compares a server figure with its baseline and checks the target, if any.
func newRow(scenario, metric string, figure, baseline float64, server, base measure, t *target) row {
	r := row{
		Scenario: scenario, Metric: metric, Figure: figure, Baseline: baseline, Target: t,
		P50Ms: ms(server.percentile(50)), P99Ms: ms(server.percentile(99)),
		BaselineP50Ms: ms(base.percentile(50)), BaselineP99Ms: ms(base.percentile(99)),
		Ops: server.ops, BaselineOps: base.ops, Errors: server.errors + base.errors,
	}
	if baseline > 0 {
		r.Ratio = figure / baseline
	}
	if t != nil {
		met := t.met(r.Ratio) && r.Errors == 0
		r.Met = &met
	}
	for _, err := range []error{server.firstError, base.firstError} {
		if err != nil && r.FirstError == "" {
			r.FirstError = err.Error()
		}
	}
	return r
}

func ms(d time.Duration) float64 { return round(float64(d)/float64(time.Millisecond), 3) }

func mb(bytes int64) float64 { return round(float64(bytes)/(1<<20), 1) }

func round(v float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(v*p) / p
}

// soak is scenario 5's result.
type soak struct {
	Duration string `json:"duration"`
	// Ops and Errors per operation kind (invite, signup, submit, poll, read, list).
	Ops    map[string]int `json:"ops"`
	Errors map[string]int `json:"errors"`
	// FirstError is the first failure seen, if any.
	FirstError string             `json:"firstError,omitempty"`
	P50Ms      float64            `json:"p50Ms"`
	P99Ms      float64            `json:"p99Ms"`
	P99MsByOp  map[string]float64 `json:"p99MsByOp"`
	// RSSStartMB is the server's RSS when the soak began, RSSEndMB when it ended, RSSFirstHalfMaxMB
	// the highest sample in the first half; PeakRSSMB is the peak (VmHWM) during the soak.
	RSSStartMB        float64   `json:"rssStartMB"`
	RSSEndMB          float64   `json:"rssEndMB"`
	RSSFirstHalfMaxMB float64   `json:"rssFirstHalfMaxMB"`
	PeakRSSMB         float64   `json:"peakRssMB"`
	RSSSamplesMB      []float64 `json:"rssSamplesMB"`
	// NoGrowth: the end is within 10% of the first half's highest sample.
	NoGrowth bool `json:"noGrowth"`
	Met      bool `json:"met"`
}

// soakRSSLimit is the bound set on the server's RSS during the soak.
const soakRSSLimit = 150 << 20

func (r *report) count() {
	r.TargetsMet, r.Targets = 0, 0
	for _, e := range r.Engines {
		for _, row := range e.Rows {
			if row.Met != nil {
				r.Targets++
				if *row.Met {
					r.TargetsMet++
				}
			}
		}
		if e.Soak != nil {
			r.Targets++
			if e.Soak.Met {
				r.TargetsMet++
			}
		}
	}
}

func (r *report) writeJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// printTable writes the rows as a Markdown table, then the soak of each engine.
func (r *report) printTable(w io.Writer) {
	cols := []string{"engine", "scenario", "metric", "server", "baseline", "ratio", "target", "met",
		"p50 ms", "p99 ms", "base p50 ms", "base p99 ms", "errors", "peak RSS MB"}
	var lines [][]string
	for _, e := range r.Engines {
		if e.Error != "" {
			lines = append(lines, []string{e.Engine, "failed: " + e.Error, "", "", "", "", "", "", "", "", "", "", "", ""})
		}
		for _, row := range e.Rows {
			t, met := "–", "–"
			if row.Target != nil {
				t = row.Target.String()
				met = "no"
				if *row.Met {
					met = "yes"
				}
			}
			lines = append(lines, []string{e.Engine, row.Scenario, row.Metric, num(row.Figure), num(row.Baseline),
				fmt.Sprintf("%.2f", row.Ratio), t, met, num(row.P50Ms), num(row.P99Ms), num(row.BaselineP50Ms),
				num(row.BaselineP99Ms), fmt.Sprint(row.Errors), num(row.PeakRSSMB)})
		}
	}
	markdown(w, cols, lines)
	fmt.Fprintln(w)
	cols = []string{"engine", "soak", "ops", "errors", "p50 ms", "p99 ms", "RSS start MB", "RSS end MB",
		"RSS first-half max MB", "peak RSS MB", "no growth", "met (0 errors, no growth, ≤ 150 MB)"}
	lines = nil
	for _, e := range r.Engines {
		s := e.Soak
		if s == nil {
			continue
		}
		ops, errs := 0, 0
		for k, n := range s.Ops {
			ops += n
			errs += s.Errors[k]
		}
		lines = append(lines, []string{e.Engine, s.Duration, fmt.Sprint(ops), fmt.Sprint(errs), num(s.P50Ms), num(s.P99Ms),
			num(s.RSSStartMB), num(s.RSSEndMB), num(s.RSSFirstHalfMaxMB), num(s.PeakRSSMB), yesNo(s.NoGrowth), yesNo(s.Met)})
	}
	markdown(w, cols, lines)
	fmt.Fprintf(w, "\ntargets met: %d of %d\n", r.TargetsMet, r.Targets)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// num writes a figure with three significant digits or more.
func num(v float64) string {
	switch {
	case v == 0:
		return "0"
	case math.Abs(v) >= 100:
		return fmt.Sprintf("%.0f", v)
	case math.Abs(v) >= 10:
		return fmt.Sprintf("%.1f", v)
	case math.Abs(v) >= 1:
		return fmt.Sprintf("%.2f", v)
	default:
		return fmt.Sprintf("%.3f", v)
	}
}

// markdown writes a Markdown table with its columns padded to line up.
func markdown(w io.Writer, cols []string, lines [][]string) {
	width := make([]int, len(cols))
	for i, c := range cols {
		width[i] = len([]rune(c))
	}
	for _, l := range lines {
		for i, c := range l {
			width[i] = max(width[i], len([]rune(c)))
		}
	}
	line := func(cells []string) {
		var b strings.Builder
		b.WriteString("|")
		for i, c := range cells {
			b.WriteString(" " + c + strings.Repeat(" ", width[i]-len([]rune(c))) + " |")
		}
		fmt.Fprintln(w, b.String())
	}
	line(cols)
	sep := make([]string, len(cols))
	for i := range sep {
		sep[i] = strings.Repeat("-", width[i])
	}
	line(sep)
	for _, l := range lines {
		line(l)
	}
}
