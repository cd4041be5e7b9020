package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Result is one row of the table: one scenario at one size.
type Result struct {
	Scenario string `json:"scenario"`
	// Size says how big the scenario was (agents, claims, subscribers).
	Size string `json:"size"`
	// Ops is how many operations were timed; OpsPerSec is Ops over the
	// measuring time (for fan-out: messages delivered per second).
	Ops       int64   `json:"ops"`
	Seconds   float64 `json:"seconds"`
	OpsPerSec float64 `json:"ops_per_sec"`
	// P50 and P99 are per-operation latencies in microseconds (for waits:
	// the time an agent waited).
	P50us float64 `json:"p50_us"`
	P99us float64 `json:"p99_us"`
	// Floor is the raw JetStream equivalent measured in the same run on the
	// same server (nil when the scenario has none).
	Floor *Floor `json:"floor,omitempty"`
	// Ratio is the cost relative to the floor: FloorOpsPerSec / OpsPerSec
	// for throughput scenarios, Seconds / FloorSeconds for one-shot ones
	// (listing). 1.0 is as fast as the raw operations; 0 when no floor.
	Ratio float64 `json:"ratio,omitempty"`
	// Extra holds scenario-specific figures (fairness, cpu_pct, rss_mb, ...).
	Extra map[string]float64 `json:"extra,omitempty"`
	// Target is the goal from issue 7 ("" if none applies at this size) and
	// Verdict PASS or MISS against it.
	Target  string `json:"target,omitempty"`
	Verdict string `json:"verdict,omitempty"`
	// Note explains what the figures include.
	Note string `json:"note,omitempty"`
	// Err is set when the scenario failed.
	Err string `json:"error,omitempty"`
}

// Floor is the raw JetStream measurement a scenario is compared with.
type Floor struct {
	What      string  `json:"what"`
	Ops       int64   `json:"ops"`
	Seconds   float64 `json:"seconds"`
	OpsPerSec float64 `json:"ops_per_sec"`
	P50us     float64 `json:"p50_us"`
	P99us     float64 `json:"p99_us"`
}

// Report is the JSON document -json prints.
type Report struct {
	Server  string    `json:"server"`
	Started time.Time `json:"started"`
	Load    string    `json:"load,omitempty"`
	// Machine is the Go version, OS/arch and CPUs this process saw.
	Machine string   `json:"machine"`
	Small   bool     `json:"small"`
	Results []Result `json:"results"`
}

// stats summarises latencies (in any order; the slice is sorted).
type stats struct {
	n        int64
	elapsed  time.Duration
	p50, p99 time.Duration
}

func summarize(lat []time.Duration, elapsed time.Duration) stats {
	slices.Sort(lat)
	return stats{n: int64(len(lat)), elapsed: elapsed, p50: quantile(lat, 0.50), p99: quantile(lat, 0.99)}
}

// quantile of sorted values (nearest rank).
func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	i = max(0, min(i, len(sorted)-1))
	return sorted[i]
}

func (s stats) rate() float64 {
	if s.elapsed <= 0 {
		return 0
	}
	return float64(s.n) / s.elapsed.Seconds()
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// fill sets the timing fields of r from s.
func (r *Result) fill(s stats) {
	r.Ops, r.Seconds, r.OpsPerSec = s.n, s.elapsed.Seconds(), s.rate()
	r.P50us, r.P99us = us(s.p50), us(s.p99)
}

// setFloor records the floor and the throughput ratio.
func (r *Result) setFloor(what string, s stats) {
	r.Floor = &Floor{What: what, Ops: s.n, Seconds: s.elapsed.Seconds(), OpsPerSec: s.rate(), P50us: us(s.p50), P99us: us(s.p99)}
	if r.OpsPerSec > 0 {
		r.Ratio = r.Floor.OpsPerSec / r.OpsPerSec
	}
}

func (r *Result) extra(k string, v float64) {
	if r.Extra == nil {
		r.Extra = make(map[string]float64)
	}
	r.Extra[k] = v
}

// judge sets Target and Verdict: pass is evaluated only when the target
// applies (the scenario ran at the size the target is set for).
func (r *Result) judge(applies bool, target string, pass bool) {
	if !applies || r.Err != "" {
		return
	}
	r.Target = target
	r.Verdict = "MISS"
	if pass {
		r.Verdict = "PASS"
	}
}

// writeJSON prints rep as indented JSON.
func writeJSON(out io.Writer, rep Report) error {
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}

// writeTable prints rep as a human table.
func writeTable(out io.Writer, rep Report) error {
	fmt.Fprintf(out, "server:  %s\n", rep.Server)
	fmt.Fprintf(out, "machine: %s\n", rep.Machine)
	if rep.Load != "" {
		fmt.Fprintf(out, "load:    %s\n", rep.Load)
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\tsize\tops\tops/s\tp50\tp99\tfloor ops/s\tfloor p50\tratio\tresult\t")
	for _, r := range rep.Results {
		if r.Err != "" {
			fmt.Fprintf(tw, "%s\t%s\t\t\t\t\t\t\t\tERROR\t\n", r.Scenario, r.Size)
			continue
		}
		floorRate, floorP50, ratio := "-", "-", "-"
		if r.Floor != nil {
			floorRate, floorP50 = fmtRate(r.Floor.OpsPerSec), fmtUs(r.Floor.P50us)
			ratio = fmt.Sprintf("%.2fx", r.Ratio)
		}
		p50, p99 := fmtUs(r.P50us), fmtUs(r.P99us)
		if r.P50us == 0 && r.P99us == 0 {
			p50, p99 = "-", "-" // a rate-only row (keepalive)
		}
		verdict := r.Verdict
		if verdict == "" {
			verdict = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n",
			r.Scenario, r.Size, r.Ops, fmtRate(r.OpsPerSec), p50, p99,
			floorRate, floorP50, ratio, verdict)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, r := range rep.Results {
		switch {
		case r.Err != "":
			fmt.Fprintf(out, "error: %s %s: %s\n", r.Scenario, r.Size, r.Err)
		case r.Target != "" || len(r.Extra) > 0:
			fmt.Fprintf(out, "%s %s: %s target %s %s\n", r.Verdict, r.Scenario, r.Size, orDash(r.Target), fmtExtra(r.Extra))
		}
	}
	for _, r := range rep.Results {
		if r.Note != "" {
			fmt.Fprintf(out, "note:  %s %s: %s\n", r.Scenario, r.Size, r.Note)
		}
	}
	for _, r := range rep.Results {
		if r.Floor != nil {
			fmt.Fprintf(out, "floor: %s %s: %s\n", r.Scenario, r.Size, r.Floor.What)
		}
	}
	return nil
}

func fmtRate(v float64) string {
	switch {
	case v >= 10_000:
		return fmt.Sprintf("%.0fk", v/1000)
	case v >= 1000:
		return fmt.Sprintf("%.1fk", v/1000)
	}
	return fmt.Sprintf("%.0f", v)
}

func fmtUs(v float64) string {
	switch {
	case v >= 1_000_000:
		return fmt.Sprintf("%.2fs", v/1e6)
	case v >= 1000:
		return fmt.Sprintf("%.2fms", v/1000)
	}
	return fmt.Sprintf("%.0fµs", v)
}

func fmtExtra(m map[string]float64) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + strconv.FormatFloat(m[k], 'f', -1, 64)
		if v := m[k]; v != float64(int64(v)) {
			parts[i] = fmt.Sprintf("%s=%.3f", k, v)
		}
	}
	return strings.Join(parts, " ")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
