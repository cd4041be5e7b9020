package bench

import (
	"context"
	"sync"
	"time"
)

// op is one timed operation by worker w.
type op func(ctx context.Context, w int) error

// loop runs op in n closed-loop workers for d and returns every latency and
// the wall time taken. The first error stops all workers.
func loop(ctx context.Context, n int, d time.Duration, f op) ([]time.Duration, time.Duration, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	lats := make([][]time.Duration, n)
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for w := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				t := time.Now()
				if !t.Before(deadline) {
					return
				}
				if err := f(ctx, w); err != nil {
					cancel(err)
					return
				}
				lats[w] = append(lats[w], time.Since(t))
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err := context.Cause(ctx); err != nil {
		return nil, elapsed, err
	}
	var all []time.Duration
	for _, l := range lats {
		all = append(all, l...)
	}
	return all, elapsed, nil
}

// rounds is how many slices a coord workload and its floor alternate in,
// so that a burst of load from elsewhere on a shared machine hits both.
const rounds = 3

// compare runs versus and returns the scenario's Result: coord's figures,
// the floor's, and what the floor is.
func compare(ctx context.Context, scenario, size string, n int, d time.Duration, floor string, coordOp, floorOp op) (Result, error) {
	c, f, err := versus(ctx, n, d, coordOp, floorOp)
	if err != nil {
		return Result{}, err
	}
	r := Result{Scenario: scenario, Size: size}
	r.fill(c)
	r.setFloor(floor, f)
	return r, nil
}

// versus measures coordOp and floorOp with n workers each, alternating
// floor and coord slices of d/rounds, after a short warm-up of both.
func versus(ctx context.Context, n int, d time.Duration, coordOp, floorOp op) (coordStats, floorStats stats, err error) {
	warm := min(d/10, 200*time.Millisecond)
	if _, _, err := loop(ctx, n, warm, floorOp); err != nil {
		return stats{}, stats{}, err
	}
	if _, _, err := loop(ctx, n, warm, coordOp); err != nil {
		return stats{}, stats{}, err
	}
	var cl, fl []time.Duration
	var ce, fe time.Duration
	for range rounds {
		l, e, err := loop(ctx, n, d/rounds, floorOp)
		if err != nil {
			return stats{}, stats{}, err
		}
		fl, fe = append(fl, l...), fe+e
		l, e, err = loop(ctx, n, d/rounds, coordOp)
		if err != nil {
			return stats{}, stats{}, err
		}
		cl, ce = append(cl, l...), ce+e
	}
	return summarize(cl, ce), summarize(fl, fe), nil
}
