package bench

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cogos-dev/coord/subjects"
)

// settle is how long the waiters of a checkpoint round get to start
// watching before the last agent arrives (a waiter that starts late still
// returns at once, from the watch's initial values, but would not measure
// the wake-up).
const settle = 30 * time.Millisecond

// runCheckpoint: n agents meet; n-1 have arrived, all n wait, the last
// arrives; the time from its Arrive call to the last waiter's return.
func runCheckpoint(ctx context.Context, e *env) ([]Result, error) {
	n, rounds := e.cfg.CheckpointAgents, e.cfg.CheckpointRounds
	cs, err := e.clients(ctx, n, "cp")
	if err != nil {
		return nil, err
	}
	defer closeAll(cs)
	agents := make([]string, n)
	for i, c := range cs {
		agents[i] = c.Agent()
	}
	jss, closeRaw, err := e.rawConns(n)
	if err != nil {
		return nil, err
	}
	defer closeRaw()
	var floorWoken []time.Duration
	var floorTotal time.Duration
	lastWoken := make([]time.Duration, 0, rounds)
	var eachWoken, arrivals []time.Duration
	var total time.Duration
	for k := range rounds + 1 { // round 0 warms up
		name := fmt.Sprintf("round-%d", k)
		err := parallel(ctx, n-1, 16, func(ctx context.Context, i int) error { return cs[i].Arrive(ctx, name) })
		if err != nil {
			return nil, fmt.Errorf("arrive: %w", err)
		}
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		woke := make([]time.Time, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i, c := range cs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = c.WaitCheckpoint(wctx, name, agents)
				woke[i] = time.Now()
			}()
		}
		time.Sleep(settle)
		start := time.Now()
		err = cs[n-1].Arrive(ctx, name)
		arrived := time.Since(start)
		wg.Wait()
		cancel()
		if err != nil {
			return nil, fmt.Errorf("last arrival: %w", err)
		}
		var last time.Duration
		for i := range n {
			if errs[i] != nil {
				return nil, fmt.Errorf("waiter %d: %w", i, errs[i])
			}
			d := woke[i].Sub(start)
			last = max(last, d)
			if k > 0 {
				eachWoken = append(eachWoken, d)
			}
		}
		if k > 0 {
			arrivals = append(arrivals, arrived)
			lastWoken = append(lastWoken, last)
			total += last
		}
		if err := cs[0].ResetCheckpoint(ctx, name); err != nil {
			return nil, fmt.Errorf("reset: %w", err)
		}
		d, err := checkpointFloor(ctx, e, jss, fmt.Sprintf("floor-%d", k))
		if err != nil {
			return nil, fmt.Errorf("floor: %w", err)
		}
		if k > 0 {
			floorWoken = append(floorWoken, d)
			floorTotal += d
		}
	}
	r := Result{Scenario: "checkpoint", Size: fmt.Sprintf("%d agents x %d rounds", n, rounds)}
	r.fill(summarize(lastWoken, total))
	each := summarize(eachWoken, total)
	r.extra("each_waiter_p50_us", us(each.p50))
	r.extra("each_waiter_p99_us", us(each.p99))
	r.extra("last_arrive_call_p50_us", us(summarize(arrivals, total).p50))
	r.Note = "p50/p99 over rounds of: last Arrive called -> every waiter returned; ops/s = rounds per second of that time"
	r.setFloor("one KV create seen by one raw KV watcher per agent (each on its own connection)", summarize(floorWoken, floorTotal))
	r.judge(n == 16, "p99 < 10ms", r.P99us < 10_000)
	return []Result{r}, nil
}

// checkpointFloor: every connection watches a fresh prefix; the last one
// creates a key in it; the time until every watcher has seen it.
func checkpointFloor(ctx context.Context, e *env, jss []jetstream.JetStream, name string) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	prefix := e.nsTok + "." + name
	var wg sync.WaitGroup
	woke := make([]time.Time, len(jss))
	errs := make([]error, len(jss))
	kvs := make([]jetstream.KeyValue, len(jss))
	for i, js := range jss {
		kv, err := js.KeyValue(ctx, subjects.CheckpointsBucket)
		if err != nil {
			return 0, err
		}
		kvs[i] = kv
		w, err := kv.Watch(ctx, prefix+".*", jetstream.UpdatesOnly())
		if err != nil {
			return 0, err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer w.Stop()
			select {
			case <-w.Updates():
				woke[i] = time.Now()
			case <-ctx.Done():
				errs[i] = ctx.Err()
			}
		}()
	}
	time.Sleep(settle)
	start := time.Now()
	if _, err := kvs[len(kvs)-1].Create(ctx, prefix+".last", []byte(`{"agent":"last"}`)); err != nil {
		cancel()
		wg.Wait()
		return 0, err
	}
	wg.Wait()
	var last time.Duration
	for i := range woke {
		if errs[i] != nil {
			return 0, errs[i]
		}
		last = max(last, woke[i].Sub(start))
	}
	return last, nil
}
