package coord

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cogos-dev/coord/subjects"
	"github.com/cogos-dev/coord/testenv"
)

// reportLatency adds p50 and p99 (microseconds) of samples to b's output.
func reportLatency(b *testing.B, samples []time.Duration) {
	if len(samples) == 0 {
		return
	}
	slices.Sort(samples)
	at := func(q float64) float64 {
		i := min(int(q*float64(len(samples))), len(samples)-1)
		return float64(samples[i].Microseconds())
	}
	b.ReportMetric(at(0.50), "p50-µs")
	b.ReportMetric(at(0.99), "p99-µs")
}

// BenchmarkCheckpointWake: time from the start of the last agent's Arrive
// to the return of a WaitCheckpoint that was already watching (one fresh
// checkpoint per iteration, two agents). The raw floor is a kv.Create
// observed by a nats.go KV watcher on the same bucket.
func BenchmarkCheckpointWake(b *testing.B) {
	srv := testenv.Start(b)
	ctx := context.Background()
	first := newClient(b, srv, "first")
	last := newClient(b, srv, "last")
	waiter := newClient(b, srv, "waiter")
	if err := first.Arrive(ctx, "provision"); err != nil {
		b.Fatal(err)
	}

	var mu sync.Mutex
	watching := map[string]chan struct{}{}
	testHookCheckpointWatching = func(name string) {
		mu.Lock()
		defer mu.Unlock()
		if ch, ok := watching[name]; ok {
			close(ch)
			delete(watching, name)
		}
	}
	b.Cleanup(func() { testHookCheckpointWatching = nil })

	b.Run("coord", func(b *testing.B) {
		var samples []time.Duration
		i := 0
		for b.Loop() {
			i++
			name := fmt.Sprintf("wake-%d-%d", b.N, i)
			if err := first.Arrive(ctx, name); err != nil {
				b.Fatal(err)
			}
			ready := make(chan struct{})
			mu.Lock()
			watching[name] = ready
			mu.Unlock()
			woken := make(chan time.Time, 1)
			go func() {
				wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				defer cancel()
				if err := waiter.WaitCheckpoint(wctx, name, []string{"first", "last"}); err != nil {
					b.Error(err)
				}
				woken <- time.Now()
			}()
			<-ready
			start := time.Now()
			if err := last.Arrive(ctx, name); err != nil {
				b.Fatal(err)
			}
			samples = append(samples, (<-woken).Sub(start))
		}
		reportLatency(b, samples)
	})

	b.Run("raw", func(b *testing.B) {
		js := srv.JetStream(b)
		kv, err := js.KeyValue(ctx, subjects.CheckpointsBucket)
		if err != nil {
			b.Fatal(err)
		}
		var samples []time.Duration
		i := 0
		for b.Loop() {
			i++
			prefix := fmt.Sprintf("test.raw-%d-%d", b.N, i)
			if _, err := kv.Create(ctx, prefix+".first", []byte("{}")); err != nil {
				b.Fatal(err)
			}
			w, err := kv.Watch(ctx, prefix+".*")
			if err != nil {
				b.Fatal(err)
			}
			seen := 0
			for e := range w.Updates() {
				if e == nil {
					break
				}
				seen++
			}
			start := time.Now()
			if _, err := kv.Create(ctx, prefix+".last", []byte("{}")); err != nil {
				b.Fatal(err)
			}
			for e := range w.Updates() {
				if e != nil && e.Operation() == jetstream.KeyValuePut {
					seen++
				}
				if seen == 2 {
					break
				}
			}
			samples = append(samples, time.Since(start))
			if err := w.Stop(); err != nil {
				b.Fatal(err)
			}
		}
		reportLatency(b, samples)
	})
}
