package bench

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cogos-dev/coord/coord"
	"github.com/cogos-dev/coord/kvstore"
	"github.com/cogos-dev/coord/subjects"
)

// runUncontended: each agent claims and releases its own path.
func runUncontended(ctx context.Context, e *env) ([]Result, error) {
	return eachSize(e.cfg.Agents, "agents", func(n int) (Result, error) { return uncontended(ctx, e, n) })
}

// eachSize runs one size of a scenario after another and collects the
// results, stopping at the first error (which names the size).
func eachSize(sizes []int, unit string, run func(n int) (Result, error)) ([]Result, error) {
	var out []Result
	for _, n := range sizes {
		r, err := run(n)
		if err != nil {
			return out, fmt.Errorf("%d %s: %w", n, unit, err)
		}
		out = append(out, r)
	}
	return out, nil
}

func uncontended(ctx context.Context, e *env, n int) (Result, error) {
	cs, err := e.clients(ctx, n, "u")
	if err != nil {
		return Result{}, err
	}
	defer closeAll(cs)
	jss, closeRaw, err := e.rawConns(n)
	if err != nil {
		return Result{}, err
	}
	defer closeRaw()
	paths := make([]string, n)
	floors := make([]*floorClaim, n)
	for i := range n {
		paths[i] = fmt.Sprintf("bench/uncontended/%d/%d", n, i)
		subj, err := e.claimSubject(fmt.Sprintf("bench/floor/uncontended/%d/%d", n, i))
		if err != nil {
			return Result{}, err
		}
		floors[i] = &floorClaim{js: jss[i], subj: subj}
	}
	coordOp := func(ctx context.Context, w int) error {
		cl, err := cs[w].TryAcquire(ctx, paths[w])
		if err != nil {
			return err
		}
		return cs[w].Release(ctx, cl)
	}
	floorOp := func(ctx context.Context, w int) error { return floors[w].claimRelease(ctx) }
	r, err := compare(ctx, "claim+release", fmt.Sprintf("%d agents", n), n, e.cfg.Duration,
		"revision-checked publish with TTL expecting the last marker + revision-checked delete, same concurrency", coordOp, floorOp)
	if err != nil {
		return Result{}, err
	}
	r.judge(n == 1 || n == 16, "ratio <= 1.25", r.Ratio <= 1.25)
	return r, nil
}

// runTryHeld: agents try to claim a path another agent holds.
func runTryHeld(ctx context.Context, e *env) ([]Result, error) {
	holder, err := e.clients(ctx, 1, "holder")
	if err != nil {
		return nil, err
	}
	defer closeAll(holder)
	const path = "bench/held"
	if _, err := holder[0].TryAcquire(ctx, path); err != nil {
		return nil, err
	}
	subj, err := e.claimSubject(path)
	if err != nil {
		return nil, err
	}
	return eachSize(e.cfg.Agents, "agents", func(n int) (Result, error) { return tryHeld(ctx, e, n, path, subj) })
}

func tryHeld(ctx context.Context, e *env, n int, path, subj string) (Result, error) {
	cs, err := e.clients(ctx, n, "t")
	if err != nil {
		return Result{}, err
	}
	defer closeAll(cs)
	jss, closeRaw, err := e.rawConns(n)
	if err != nil {
		return Result{}, err
	}
	defer closeRaw()
	coordOp := func(ctx context.Context, w int) error {
		cl, err := cs[w].TryAcquire(ctx, path)
		if errors.Is(err, coord.ErrClaimed) {
			return nil
		}
		if err == nil {
			return fmt.Errorf("try-acquire of a held path succeeded (token %d)", cl.Token)
		}
		return err
	}
	floorOp := func(ctx context.Context, w int) error { return failingCreate(ctx, jss[w], subj) }
	r, err := compare(ctx, "try-acquire-held", fmt.Sprintf("%d agents", n), n, e.cfg.Duration,
		"one failing create: publish expecting last sequence 0 on the held key", coordOp, floorOp)
	if err != nil {
		return Result{}, err
	}
	r.judge(n == 1 || n == 16, "ratio <= 1.1", r.Ratio <= 1.1)
	return r, nil
}

// runContended: n agents take turns on one path with blocking Acquire and
// zero hold time.
func runContended(ctx context.Context, e *env) ([]Result, error) {
	var out []Result
	rate16 := 0.0
	for _, n := range e.cfg.Contended {
		r, err := contended(ctx, e, n)
		if err != nil {
			return out, fmt.Errorf("%d agents: %w", n, err)
		}
		switch n {
		case 16:
			rate16 = r.OpsPerSec
			r.judge(true, ">= 5000/s, p99 < 5ms, fairness >= 0.95",
				r.OpsPerSec >= 5000 && r.P99us < 5000 && r.Extra["fairness"] >= 0.95)
		case 64:
			collapse := rate16 > 0 && r.OpsPerSec < 0.8*rate16
			target := "p99 < 20ms"
			if rate16 > 0 {
				target += ", >= 80% of the 16-agent rate"
			}
			r.judge(true, target, r.P99us < 20_000 && !collapse)
		}
		out = append(out, r)
	}
	return out, nil
}

func contended(ctx context.Context, e *env, n int) (Result, error) {
	cs, err := e.clients(ctx, n, "c")
	if err != nil {
		return Result{}, err
	}
	defer closeAll(cs)
	path := fmt.Sprintf("bench/contended/%d", n)
	// One bound for every Acquire of the warm-up and the run, not one
	// context per call or per phase: coord's waiter watch lives on the
	// context of the Acquire that started it, so cancelling that context
	// loses wake-ups (see docs/performance.md).
	actx, acancel := context.WithTimeout(ctx, 2*e.cfg.Duration+time.Minute)
	defer acancel()
	// Every agent waits once so that its waiter watch exists before timing.
	if _, _, _, _, err := contendTurns(ctx, actx, acancel, cs, path, min(e.cfg.Duration/10, 200*time.Millisecond)); err != nil {
		return Result{}, err
	}
	waits, elapsed, turns, retries, err := contendTurns(ctx, actx, acancel, cs, path, e.cfg.Duration)
	if err != nil {
		return Result{}, err
	}
	r := Result{Scenario: "contended", Size: fmt.Sprintf("%d agents", n)}
	r.fill(summarize(waits, elapsed))
	fewest, total := turns[0], 0
	for _, t := range turns {
		fewest = min(fewest, t)
		total += t
	}
	if total > 0 {
		r.extra("fairness", float64(fewest)/(float64(total)/float64(n)))
	}
	f, err := contendedFloor(ctx, e, n, e.cfg.Duration)
	if err != nil {
		return Result{}, fmt.Errorf("floor: %w", err)
	}
	r.setFloor("token ring: each of n raw connections watches its own key; a hand-over is one KV put to the next key (one write + one notification); floor p50 is write -> woken", f)
	r.Note = "ops/s is hand-overs per second; p50/p99 is the wait in Acquire"
	if retries > 0 {
		r.extra("acquire_errors", float64(retries))
		r.Note += "; acquire_errors: Acquire failed with a revision mismatch under contention and was retried (coord bug)"
	}
	return r, nil
}

// contendTurns runs the agents for d; it returns each acquisition's wait,
// the wall time, the turns per agent, and how many acquires failed with a
// revision mismatch (coord gives up on its create after a few conflicts and
// returns it; the agent retries, and the wait counts from the first try).
// Acquires run under actx, everything else under ctx; a failure calls
// abort (which ends actx) so that agents blocked in Acquire stop too.
func contendTurns(ctx, actx context.Context, abort func(), cs []*coord.Client, path string, d time.Duration) ([]time.Duration, time.Duration, []int, int64, error) {
	var retries atomic.Int64
	n := len(cs)
	ctx, cancelCause := context.WithCancelCause(ctx)
	defer cancelCause(nil)
	cancel := func(err error) {
		cancelCause(err)
		abort()
	}
	waits := make([][]time.Duration, n)
	turns := make([]int, n)
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for w := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil && time.Now().Before(deadline) {
				t := time.Now()
				cl, err := cs[w].Acquire(actx, path)
				for errors.Is(err, kvstore.ErrRevisionMismatch) && retries.Add(1) < 10_000 {
					cl, err = cs[w].Acquire(actx, path)
				}
				if err != nil {
					cancel(fmt.Errorf("acquire: %w", err))
					return
				}
				waits[w] = append(waits[w], time.Since(t))
				turns[w]++
				if err := cs[w].Release(ctx, cl); err != nil {
					cancel(fmt.Errorf("release: %w", err))
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err := context.Cause(ctx); err != nil {
		return nil, 0, nil, 0, err
	}
	var all []time.Duration
	for _, w := range waits {
		all = append(all, w...)
	}
	return all, elapsed, turns, retries.Load(), nil
}

// runWaiters: n agents block on n held paths; all are released at once.
func runWaiters(ctx context.Context, e *env) ([]Result, error) {
	n := e.cfg.Waiters
	holders, err := e.clients(ctx, max(1, n/10), "h")
	if err != nil {
		return nil, err
	}
	defer closeAll(holders)
	waiters, err := e.clients(ctx, n, "w")
	if err != nil {
		return nil, err
	}
	defer closeAll(waiters)
	paths := make([]string, n)
	held := make([]*coord.Claim, n)
	err = parallel(ctx, n, 16, func(ctx context.Context, i int) error {
		paths[i] = fmt.Sprintf("bench/waiters/%d", i)
		cl, err := holders[i%len(holders)].TryAcquire(ctx, paths[i])
		held[i] = cl
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("holding: %w", err)
	}

	wctx, cancel := context.WithTimeoutCause(ctx, time.Minute, errors.New("waiters not served within a minute"))
	defer cancel()
	got := make([]time.Time, n)
	errc := make(chan error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := waiters[i].Acquire(wctx, paths[i])
			got[i] = time.Now()
			if err != nil {
				errc <- fmt.Errorf("waiter %d: %w", i, err)
			}
		}()
	}
	if err := e.awaitWaiters(wctx, n, errc); err != nil {
		cancel()
		wg.Wait()
		return nil, err
	}
	// Every holder lets go at once, as agents finishing together would.
	start := time.Now()
	err = parallel(ctx, n, n, func(ctx context.Context, i int) error {
		return holders[i%len(holders)].Release(ctx, held[i])
	})
	if err != nil {
		cancel()
		wg.Wait()
		return nil, fmt.Errorf("releasing: %w", err)
	}
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		return nil, err
	}
	lat := make([]time.Duration, n)
	var last time.Duration
	for i, t := range got {
		lat[i] = t.Sub(start)
		last = max(last, lat[i])
	}
	s := summarize(lat, last)
	r := Result{Scenario: "blocking-waiters", Size: fmt.Sprintf("%d waiters", n)}
	r.fill(s)
	r.extra("all_served_ms", float64(last)/float64(time.Millisecond))
	r.Note = fmt.Sprintf("%d holder clients release all paths at once; p50/p99: from the start of the releases to each waiter holding its path; ops/s = waiters / time until the last", len(holders))
	r.judge(n == 1000, "all served < 1s", last < time.Second)
	return []Result{r}, nil
}

// awaitWaiters polls until n waiter keys of this namespace exist: every
// blocked Acquire has queued. It counts subjects in the stream's state, not
// with a watch: each waiting client already holds one consumer on the
// waiter stream, and the server allows 1,000 per stream by default.
// A waiter that fails meanwhile (errs) ends the wait at once.
func (e *env) awaitWaiters(ctx context.Context, n int, errs <-chan error) error {
	st, err := e.js.Stream(ctx, "KV_"+subjects.WaitersBucket)
	if err != nil {
		return fmt.Errorf("opening waiter stream: %w", err)
	}
	filter := "$KV." + subjects.WaitersBucket + ".*." + e.nsTok + ".>"
	for {
		info, err := st.Info(ctx, jetstream.WithSubjectFilter(filter))
		if err != nil {
			return fmt.Errorf("counting waiters: %w", err)
		}
		count := len(info.State.Subjects)
		if count >= n {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("only %d of %d waiters queued: %w", count, n, context.Cause(ctx))
		case err := <-errs:
			return fmt.Errorf("only %d of %d waiters queued: %w", count, n, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
