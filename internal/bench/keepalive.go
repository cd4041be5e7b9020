package bench

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/cogos-dev/coord/coord"
	"github.com/cogos-dev/coord/subjects"
)

// agentsPerConn is how many keepalive agents share one NATS connection, as
// agents behind one sidecar do.
const agentsPerConn = 100

// runKeepalive: agents hold claims and keep them alive; renewals per second
// over at least one renewal period, process CPU and resident memory.
func runKeepalive(ctx context.Context, e *env) ([]Result, error) {
	a, per, ttl := e.cfg.KeepaliveAgents, e.cfg.KeepaliveClaims, e.cfg.KeepaliveTTL
	debug.FreeOSMemory()
	rss0 := residentBytes()

	conns := make([]*nats.Conn, 0, (a+agentsPerConn-1)/agentsPerConn)
	defer func() {
		for _, nc := range conns {
			nc.Close()
		}
	}()
	for range cap(conns) {
		nc, err := e.dial("coordbench keepalive")
		if err != nil {
			return nil, err
		}
		conns = append(conns, nc)
	}
	cs := make([]*coord.Client, a)
	defer func() { closeAll(cs) }()
	for i := range a {
		var err error
		cs[i], err = e.clientOn(ctx, conns[i/agentsPerConn], "k")
		if err != nil {
			return nil, err
		}
	}
	// Agents take their claims spread over one renewal period, as agents
	// starting at different times would, so renewals arrive at a steady
	// rate rather than in one burst.
	period := ttl / 3
	held := make([]*coord.Claim, a*per)
	start := time.Now()
	err := parallel(ctx, a, a, func(ctx context.Context, i int) error {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Until(start.Add(period * time.Duration(i) / time.Duration(a)))):
		}
		for j := range per {
			cl, err := cs[i].TryAcquire(ctx, fmt.Sprintf("bench/keepalive/%d/%d", i, j), coord.WithTTL(ttl))
			if err != nil {
				return err
			}
			held[i*per+j] = cl
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("claiming: %w", err)
	}

	// Count renewals as they are written: every write to this namespace's
	// claims during the window is one.
	var renewals atomic.Int64
	sub, err := e.nc.Subscribe("$KV."+subjects.ClaimsBucket+"."+e.nsTok+".>", func(*nats.Msg) { renewals.Add(1) })
	if err != nil {
		return nil, err
	}
	defer sub.Unsubscribe()
	if err := e.nc.FlushTimeout(5 * time.Second); err != nil {
		return nil, err
	}
	// Every claim was taken less than a renewal period ago, so a window of
	// one period sees each renewed once if keepalive keeps up.
	window := max(period, time.Second)
	cpu0, cpuOK := cpuTime()
	renewals.Store(0)
	wstart := time.Now()
	var rss uint64 // peak over the window, sampled
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	end := time.After(window)
sample:
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-tick.C:
			rss = max(rss, residentBytes())
		case <-end:
			break sample
		}
	}
	got := renewals.Load()
	elapsed := time.Since(wstart)
	cpu1, _ := cpuTime()
	rss = max(rss, residentBytes())
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	goroutines := runtime.NumGoroutine()
	if e.cfg.HeapProfile != "" {
		if err := writeHeapProfile(e.cfg.HeapProfile); err != nil {
			return nil, err
		}
	}

	lost := 0
	for _, cl := range held {
		if !cl.Held() {
			lost++
		}
	}
	if lost > 0 {
		return nil, fmt.Errorf("%d of %d claims lost while kept alive", lost, len(held))
	}
	r := Result{Scenario: "keepalive", Size: fmt.Sprintf("%d agents x %d claims, ttl %v", a, per, ttl)}
	r.Ops, r.Seconds, r.OpsPerSec = got, elapsed.Seconds(), float64(got)/elapsed.Seconds()
	r.extra("expected_per_s", float64(a*per)/(ttl/3).Seconds())
	cpuPct := -1.0
	if cpuOK {
		cpuPct = 100 * float64(cpu1-cpu0) / float64(elapsed)
		r.extra("cpu_pct", cpuPct)
	}
	r.extra("rss_mb", float64(rss)/(1<<20))
	r.extra("rss_delta_mb", (float64(rss)-float64(rss0))/(1<<20))
	r.extra("go_heap_inuse_mb", float64(ms.HeapInuse)/(1<<20))
	r.extra("goroutines", float64(goroutines))
	r.Note = fmt.Sprintf("claims taken spread over one renewal period, then ops/s = renewals/s over the next period (%v); rss_mb is the peak over it; %d agents share each connection; ", window.Round(time.Millisecond), agentsPerConn)
	if e.embedded {
		r.Note += "cpu_pct and rss_mb are the whole process: the clients AND the embedded server"
	} else {
		r.Note += "cpu_pct and rss_mb are the client side alone (server is external)"
	}
	r.judge(a == 1000 && per == 10 && ttl == 30*time.Second, "cpu < 5% of a core, rss < 100MB",
		cpuOK && cpuPct < 5 && rss < 100<<20)
	return []Result{r}, nil
}

// clientOn opens a coord client on a shared connection.
func (e *env) clientOn(ctx context.Context, nc *nats.Conn, prefix string) (*coord.Client, error) {
	return coord.New(ctx, coord.WithConn(nc), coord.WithAgent(e.agentID(prefix)), coord.WithNamespace(e.ns))
}

// writeHeapProfile writes the live heap to path.
func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	runtime.GC()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
