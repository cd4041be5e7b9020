package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cogos-dev/coord/testenv"
)

// TestRunSmall runs every scenario at the small preset against an embedded
// server and checks the output is complete and sane.
func TestRunSmall(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var out bytes.Buffer
	results, err := Run(ctx, Config{Small: true, JSON: true}, &out)
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, out.String())
	}

	var rep Report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out.String())
	}
	if len(rep.Results) != len(results) {
		t.Errorf("JSON has %d results, Run returned %d", len(rep.Results), len(results))
	}
	if !strings.Contains(rep.Server, "embedded") {
		t.Errorf("server = %q, want the embedded server named", rep.Server)
	}

	small := SmallConfig()
	wantRows := map[string]int{
		"claim+release":     len(small.Agents),
		"try-acquire-held":  len(small.Agents),
		"contended":         len(small.Contended),
		"blocking-waiters":  1,
		"checkpoint":        1,
		"broadcast-publish": len(small.Agents),
		"broadcast-fanout":  1,
		"handoff":           len(small.Agents),
		"keepalive":         1,
		"list-claims":       len(small.ListSizes),
	}
	if got := ScenarioNames(); len(got) != len(wantRows) {
		t.Errorf("ScenarioNames() = %v, want the %d scenarios this test knows", got, len(wantRows))
	}
	rows := map[string]int{}
	for _, r := range results {
		rows[r.Scenario]++
		name := r.Scenario + " " + r.Size
		if r.Err != "" {
			t.Errorf("%s: error %s", name, r.Err)
			continue
		}
		if r.Ops <= 0 || r.OpsPerSec <= 0 || r.Seconds <= 0 {
			t.Errorf("%s: ops %d, ops/s %v, seconds %v: want all > 0", name, r.Ops, r.OpsPerSec, r.Seconds)
		}
		if r.Scenario != "keepalive" && (r.P50us <= 0 || r.P99us < r.P50us) {
			t.Errorf("%s: p50 %vµs, p99 %vµs: want 0 < p50 <= p99", name, r.P50us, r.P99us)
		}
		if r.Floor != nil {
			if r.Floor.Ops <= 0 || r.Floor.OpsPerSec <= 0 {
				t.Errorf("%s: floor ops %d, ops/s %v: want > 0", name, r.Floor.Ops, r.Floor.OpsPerSec)
			}
			if r.Ratio <= 0 || math.IsInf(r.Ratio, 0) || math.IsNaN(r.Ratio) {
				t.Errorf("%s: ratio %v, want a positive number", name, r.Ratio)
			}
		}
		if r.Target != "" || r.Verdict != "" {
			t.Errorf("%s: verdict %q on target %q in a small run, want none (targets are for full sizes)", name, r.Verdict, r.Target)
		}
	}
	for name, n := range wantRows {
		if rows[name] != n {
			t.Errorf("scenario %s: %d rows, want %d", name, rows[name], n)
		}
	}
	for _, name := range []string{"claim+release", "try-acquire-held", "broadcast-publish", "broadcast-fanout", "handoff", "list-claims"} {
		for _, r := range results {
			if r.Scenario == name && r.Floor == nil {
				t.Errorf("%s %s: no floor measured", name, r.Size)
			}
		}
	}
	for _, r := range results {
		switch r.Scenario {
		case "contended":
			if f, ok := r.Extra["fairness"]; !ok || f <= 0 || f > 1 {
				t.Errorf("contended %s: fairness %v (present %v), want in (0, 1]", r.Size, f, ok)
			}
		case "keepalive":
			if r.Extra["rss_mb"] <= 0 {
				t.Errorf("keepalive: rss_mb %v, want > 0", r.Extra["rss_mb"])
			}
			if _, ok := r.Extra["cpu_pct"]; !ok {
				t.Error("keepalive: no cpu_pct")
			}
			if !strings.Contains(r.Note, "embedded server") {
				t.Errorf("keepalive note %q does not say the figures include the server", r.Note)
			}
		}
	}
}

// TestRunTable checks the human table names every row and the columns.
func TestRunTable(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out bytes.Buffer
	cfg := DefaultConfig()
	cfg.Agents, cfg.Duration, cfg.Run = []int{1}, 300*time.Millisecond, "^claim\\+release$"
	results, err := Run(ctx, cfg, &out)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if len(results) != 1 {
		t.Fatalf("-run claim+release -agents 1 gave %d rows, want 1", len(results))
	}
	text := out.String()
	for _, want := range []string{"scenario", "ops/s", "p50", "p99", "floor ops/s", "ratio", "result", "claim+release", "1 agents", "PASS"} {
		if want == "PASS" {
			if !strings.Contains(text, "PASS") && !strings.Contains(text, "MISS") {
				t.Errorf("table has no PASS/MISS verdict:\n%s", text)
			}
			continue
		}
		if !strings.Contains(text, want) {
			t.Errorf("table lacks %q:\n%s", want, text)
		}
	}
}

func TestFlags(t *testing.T) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	cfg := Flags(fs)
	err := fs.Parse([]string{"-nats", "nats://x:4222", "-json", "-agents", "2,8", "-list", "50", "-keepalive-ttl", "9s", "-run", "list"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.NATSURL != "nats://x:4222" || !cfg.JSON || !slices.Equal(cfg.Agents, []int{2, 8}) ||
		!slices.Equal(cfg.ListSizes, []int{50}) || cfg.KeepaliveTTL != 9*time.Second || cfg.Run != "list" {
		t.Errorf("parsed config = %+v", *cfg)
	}
	if !slices.Equal(cfg.Contended, DefaultConfig().Contended) {
		t.Errorf("contended = %v, want the default %v", cfg.Contended, DefaultConfig().Contended)
	}
	if err := fs.Parse([]string{"-agents", "1,x"}); err == nil {
		t.Error("-agents 1,x parsed without error")
	}
}

func TestConfigValidate(t *testing.T) {
	bad := []func(*Config){
		func(c *Config) { c.Duration = 0 },
		func(c *Config) { c.Agents = []int{0} },
		func(c *Config) { c.KeepaliveTTL = 500 * time.Millisecond },
		func(c *Config) { c.Waiters = 0 },
		func(c *Config) { c.Run = "(" },
	}
	for i, f := range bad {
		cfg := DefaultConfig()
		f(&cfg)
		if _, err := Run(context.Background(), cfg, &bytes.Buffer{}); err == nil {
			t.Errorf("case %d: Run accepted an invalid config", i)
		}
	}
}

func TestQuantile(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 100; i++ {
		d = append(d, time.Duration(i))
	}
	if got := quantile(d, 0.5); got != 50 {
		t.Errorf("p50 = %v, want 50", got)
	}
	if got := quantile(d, 0.99); got != 99 {
		t.Errorf("p99 = %v, want 99", got)
	}
	if got := quantile(nil, 0.5); got != 0 {
		t.Errorf("p50 of nothing = %v, want 0", got)
	}
}

// TestRunExternalCleansUp runs against a server reached by URL (the --nats
// path) and checks the figures are labelled as client-side and that the
// run leaves nothing behind in the shared buckets and streams.
func TestRunExternalCleansUp(t *testing.T) {
	srv := testenv.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out bytes.Buffer
	results, err := Run(ctx, Config{Small: true, NATSURL: srv.URL(), Run: "claim\\+release|keepalive|handoff|checkpoint|broadcast-publish"}, &out)
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "external "+srv.URL()) {
		t.Errorf("output does not name the external server:\n%s", out.String())
	}
	for _, r := range results {
		if r.Scenario == "keepalive" && !strings.Contains(r.Note, "client side alone") {
			t.Errorf("keepalive note %q does not say the figures are the client side alone", r.Note)
		}
	}
	js := srv.JetStream(t)
	for _, name := range []string{"KV_coord-claims", "KV_coord-claim-waiters", "KV_coord-checkpoints", "COORD_BROADCASTS", "COORD_HANDOFFS"} {
		st, err := js.Stream(ctx, name)
		if err != nil {
			t.Errorf("stream %s: %v (the run should have created it)", name, err)
			continue
		}
		info, err := st.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.State.Msgs != 0 {
			t.Errorf("stream %s holds %d messages after the run, want 0 (purged)", name, info.State.Msgs)
		}
	}
}
