package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"runtime"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/cogos-dev/coord/coord/embedded"
)

// scenario is one named workload; it returns a row per size it ran.
type scenario struct {
	name string
	run  func(ctx context.Context, e *env) ([]Result, error)
}

// scenarios in the order they run. Keepalive runs first: its resident
// memory figure is the process's, and the Go runtime keeps what earlier
// scenarios (1,000 waiting clients, 100,000 listed claims) allocated.
var scenarios = []scenario{
	{"keepalive", runKeepalive},
	{"claim+release", runUncontended},
	{"try-acquire-held", runTryHeld},
	{"contended", runContended},
	{"blocking-waiters", runWaiters},
	{"checkpoint", runCheckpoint},
	{"broadcast-publish", runPublish},
	{"broadcast-fanout", runFanout},
	{"handoff", runHandoff},
	{"list-claims", runList},
}

// ScenarioNames lists the scenarios Run knows, in the order they run.
func ScenarioNames() []string {
	names := make([]string, len(scenarios))
	for i, s := range scenarios {
		names[i] = s.name
	}
	return names
}

// Run measures the selected scenarios, prints a table (or JSON with
// cfg.JSON) to out, and returns the rows. A scenario that fails gets a row
// with Err set and the run goes on; the returned error joins the failures.
// Everything it writes lives in a fresh namespace, purged at the end.
func Run(ctx context.Context, cfg Config, out io.Writer) ([]Result, error) {
	cfg = cfg.withPreset()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	var filter *regexp.Regexp
	if cfg.Run != "" {
		filter = regexp.MustCompile(cfg.Run)
	}
	rep := Report{
		Started: time.Now().UTC(), Load: loadAverage(), Small: cfg.Small,
		Machine: fmt.Sprintf("%s %s/%s, %d CPUs, GOMAXPROCS %d", runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.GOMAXPROCS(0)),
	}
	url := cfg.NATSURL
	var inproc *server.Server
	if url == "" {
		srv, dir, err := startEmbedded()
		if err != nil {
			return nil, err
		}
		defer func() {
			srv.Shutdown()
			srv.WaitForShutdown()
			os.RemoveAll(dir)
		}()
		url = srv.ClientURL()
		how := "in-process connections, as the sidecar's agents"
		if cfg.TCP {
			how = "loopback TCP connections"
		} else {
			inproc = srv
		}
		rep.Server = "embedded nats-server " + server.VERSION + " in this process (" + url + ", file store, " + how + ")"
	} else {
		rep.Server = "external " + url
	}
	e, err := newEnv(ctx, cfg, url, inproc)
	if err != nil {
		return nil, err
	}
	e.embedded = cfg.NATSURL == ""
	defer e.close()

	var errs []error
	for _, sc := range scenarios {
		if filter != nil && !filter.MatchString(sc.name) {
			continue
		}
		if ctx.Err() != nil {
			errs = append(errs, ctx.Err())
			break
		}
		t := time.Now()
		e.progress("bench: %s ...", sc.name)
		rs, err := sc.run(ctx, e)
		e.progress("bench: %s done in %v", sc.name, time.Since(t).Round(time.Millisecond))
		if err != nil {
			rs = append(rs, Result{Scenario: sc.name, Err: err.Error()})
			errs = append(errs, fmt.Errorf("bench: %s: %w", sc.name, err))
		}
		rep.Results = append(rep.Results, rs...)
		if perr := e.purge(ctx); perr != nil {
			errs = append(errs, perr)
		}
	}
	if cfg.Small {
		// Targets are set for the full sizes and durations; a verdict on a
		// 200 ms smoke run would be noise.
		for i := range rep.Results {
			rep.Results[i].Target, rep.Results[i].Verdict = "", ""
		}
	}
	var werr error
	if cfg.JSON {
		werr = writeJSON(out, rep)
	} else {
		werr = writeTable(out, rep)
	}
	return rep.Results, errors.Join(append(errs, werr)...)
}

// startEmbedded starts a JetStream server on a loopback port with its store
// in a fresh temporary directory.
func startEmbedded() (*server.Server, string, error) {
	dir, err := os.MkdirTemp("", "coordbench-")
	if err != nil {
		return nil, "", fmt.Errorf("bench: %w", err)
	}
	opts, err := embedded.Options(embedded.Config{StoreDir: dir, Port: server.RANDOM_PORT})
	if err != nil {
		os.RemoveAll(dir)
		return nil, "", err
	}
	opts.MaxPayload = 8 << 20
	srv, err := embedded.Start(opts, nil)
	if err != nil {
		os.RemoveAll(dir)
		return nil, "", err
	}
	return srv, dir, nil
}

// newNamespace is a namespace no other run uses.
func newNamespace() string {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		return fmt.Sprintf("bench-%d", time.Now().UnixNano())
	}
	return "bench-" + hex.EncodeToString(b[:])
}

// loadAverage is the machine's load (Linux), for the record.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return "load average " + strings.Join(f[:3], ", ")
}
