package bench

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cogos-dev/coord/coord"
	"github.com/cogos-dev/coord/subjects"
)

// listRepeats is how many times each listing (coord and floor) is timed.
const listRepeats = 3

// listTTL keeps the listed claims alive with no renewal during the run.
const listTTL = time.Hour

// runList: hold ListSizes claims (growing) and time List at each size,
// against a raw watch of the same keys.
func runList(ctx context.Context, e *env) ([]Result, error) {
	sizes := slices.Clone(e.cfg.ListSizes)
	slices.Sort(sizes)
	holders, err := e.clients(ctx, 8, "l")
	if err != nil {
		return nil, err
	}
	defer closeAll(holders)
	lister := holders[0]
	kv, err := e.js.KeyValue(ctx, subjects.ClaimsBucket)
	if err != nil {
		return nil, err
	}
	filter := e.nsTok + ".>"
	var out []Result
	have := 0
	for _, size := range sizes {
		from := have
		t0 := time.Now()
		err := parallel(ctx, size-from, 64, func(ctx context.Context, i int) error {
			i += from
			_, err := holders[i%len(holders)].TryAcquire(ctx, fmt.Sprintf("bench/list/%d", i), coord.WithTTL(listTTL))
			return err
		})
		if err != nil {
			return out, fmt.Errorf("claiming %d: %w", size, err)
		}
		fill := time.Since(t0)
		have = size
		var ct, ft []time.Duration
		for range listRepeats {
			t := time.Now()
			n, err := rawList(ctx, kv, filter)
			if err != nil {
				return out, fmt.Errorf("floor list: %w", err)
			}
			ft = append(ft, time.Since(t))
			if n != size {
				return out, fmt.Errorf("floor listed %d keys, want %d", n, size)
			}
			t = time.Now()
			claims, err := lister.List(ctx)
			if err != nil {
				return out, fmt.Errorf("list: %w", err)
			}
			ct = append(ct, time.Since(t))
			if len(claims) != size {
				return out, fmt.Errorf("listed %d claims, want %d", len(claims), size)
			}
		}
		c, f := summarize(ct, sum(ct)), summarize(ft, sum(ft))
		r := Result{Scenario: "list-claims", Size: fmt.Sprintf("%d claims", size)}
		r.fill(c)
		r.Ops = int64(listRepeats)
		r.setFloor("watch of the namespace's keys (ignore deletes) to the end of initial values", f)
		r.Ratio = float64(c.p50) / float64(f.p50)
		r.extra("claims_per_s_listed", float64(size)/c.p50.Seconds())
		r.extra("fill_claims_per_s", float64(size-from)/fill.Seconds())
		r.Note = "p50/p99 are of whole listings; ratio is p50 / floor p50"
		r.judge(size == 100_000, "p50 < 0.5s", c.p50 < 500*time.Millisecond)
		out = append(out, r)
	}
	return out, nil
}

func sum(ds []time.Duration) time.Duration {
	var t time.Duration
	for _, d := range ds {
		t += d
	}
	return t
}

// rawList counts the live keys matching filter with a nats.go watch.
func rawList(ctx context.Context, kv jetstream.KeyValue, filter string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	w, err := kv.Watch(ctx, filter, jetstream.IgnoreDeletes())
	if err != nil {
		return 0, err
	}
	defer w.Stop()
	n := 0
	for {
		select {
		case <-ctx.Done():
			return n, ctx.Err()
		case e, ok := <-w.Updates():
			if !ok {
				return n, fmt.Errorf("watch closed after %d keys", n)
			}
			if e == nil {
				return n, nil
			}
			n++
		}
	}
}
