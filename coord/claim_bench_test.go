package coord

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cogos-dev/coord/kvstore"
	"github.com/cogos-dev/coord/subjects"
	"github.com/cogos-dev/coord/testenv"
)

// Each benchmark runs coord's operation beside the raw JetStream operations
// it is made of, as sub-benchmarks on the same server in the same run.
//
//	go test -run '^$' -bench . -benchtime=2s ./coord/

const benchTTL = 30 * time.Second

func reportOps(b *testing.B) {
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(b.N)/s, "ops/s")
	}
}

// parallel16 makes RunParallel use 16 goroutines whatever GOMAXPROCS is.
func parallel16(b *testing.B) {
	p := runtime.GOMAXPROCS(0)
	b.SetParallelism((16 + p - 1) / p)
}

// benchClients makes n clients, each with its own connection and agent.
func benchClients(b *testing.B, srv *testenv.Server, n int) []*Client {
	cs := make([]*Client, n)
	for i := range cs {
		cs[i] = newClient(b, srv, fmt.Sprintf("bench-%02d", i), WithClaimTTL(benchTTL))
	}
	return cs
}

// rawKV publishes straight to a bucket's subjects: the fewest round trips
// a claim can cost.
type rawKV struct {
	js     jetstream.JetStream
	subj   string
	marker uint64 // revision of the key's latest delete marker
}

var rawKeys atomic.Int64

// freshKey is a key never written before, so its latest marker is known: none.
func freshKey(prefix string) string { return fmt.Sprintf("%s%d", prefix, rawKeys.Add(1)) }

func newRawKV(b *testing.B, srv *testenv.Server, key string) *rawKV {
	js, err := jetstream.New(srv.Connect(b))
	if err != nil {
		b.Fatal(err)
	}
	return &rawKV{js: js, subj: "$KV." + subjects.ClaimsBucket + "." + key}
}

// create is a revision-checked publish with a TTL (expects the last marker).
func (r *rawKV) create(ctx context.Context) (uint64, error) {
	ack, err := r.js.PublishMsg(ctx, &nats.Msg{Subject: r.subj, Data: []byte(`{"agent":"floor"}`)},
		jetstream.WithExpectLastSequencePerSubject(r.marker), jetstream.WithMsgTTL(benchTTL))
	if err != nil {
		return 0, err
	}
	return ack.Sequence, nil
}

// del is a revision-checked delete marker with a TTL.
func (r *rawKV) del(ctx context.Context, rev uint64) error {
	m := &nats.Msg{Subject: r.subj, Header: nats.Header{"KV-Operation": []string{"DEL"}}}
	ack, err := r.js.PublishMsg(ctx, m, jetstream.WithExpectLastSequencePerSubject(rev), jetstream.WithMsgTTL(time.Minute))
	if err != nil {
		return err
	}
	r.marker = ack.Sequence
	return nil
}

func (r *rawKV) cycle(ctx context.Context) error {
	rev, err := r.create(ctx)
	if err != nil {
		return err
	}
	return r.del(ctx, rev)
}

func claimCycle(ctx context.Context, c *Client, path string) error {
	cl, err := c.TryAcquire(ctx, path)
	if err != nil {
		return err
	}
	return cl.Release(ctx)
}

// BenchmarkClaimRelease: TryAcquire + Release of a free path, against the
// two revision-checked writes it is made of, and nats.go's kv.Create +
// kv.Delete (three round trips for a create over a delete marker).
func BenchmarkClaimRelease(b *testing.B) {
	srv := testenv.Start(b)
	ctx := context.Background()
	clients := benchClients(b, srv, 16)

	b.Run("uncontended-1", func(b *testing.B) {
		c := clients[0]
		if err := claimCycle(ctx, c, "bench/one"); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if err := claimCycle(ctx, c, "bench/one"); err != nil {
				b.Fatal(err)
			}
		}
		reportOps(b)
	})
	b.Run("uncontended-16", func(b *testing.B) {
		var next atomic.Int32
		parallel16(b)
		b.RunParallel(func(pb *testing.PB) {
			i := int(next.Add(1)-1) % len(clients)
			c, path := clients[i], fmt.Sprintf("bench/p%02d", i)
			for pb.Next() {
				if err := claimCycle(ctx, c, path); err != nil {
					b.Error(err)
					return
				}
			}
		})
		reportOps(b)
	})
	b.Run("floor/create-ttl+delete-1", func(b *testing.B) {
		r := newRawKV(b, srv, freshKey("floor.one"))
		for b.Loop() {
			if err := r.cycle(ctx); err != nil {
				b.Fatal(err)
			}
		}
		reportOps(b)
	})
	raws := make([]*rawKV, 16)
	for i := range raws {
		raws[i] = newRawKV(b, srv, freshKey("floor.p"))
	}
	b.Run("floor/create-ttl+delete-16", func(b *testing.B) {
		var next atomic.Int32
		parallel16(b)
		b.RunParallel(func(pb *testing.PB) {
			r := raws[int(next.Add(1)-1)%len(raws)]
			for pb.Next() {
				if err := r.cycle(ctx); err != nil {
					b.Error(err)
					return
				}
			}
		})
		reportOps(b)
	})
	b.Run("floor/kv.Create+kv.Delete-1", func(b *testing.B) {
		kv, err := srv.JetStream(b).KeyValue(ctx, subjects.ClaimsBucket)
		if err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if _, err := kv.Create(ctx, "floor.kv", []byte(`{"agent":"floor"}`), jetstream.KeyTTL(benchTTL)); err != nil {
				b.Fatal(err)
			}
			if err := kv.Delete(ctx, "floor.kv"); err != nil {
				b.Fatal(err)
			}
		}
		reportOps(b)
	})
}

// BenchmarkContended: 16 agents, each its own client, blocking-Acquire one
// path and release it at once. Reports handoffs/s, the p50 and p99 wait of
// an Acquire, and fairness (fewest turns / mean turns).
func BenchmarkContended(b *testing.B) {
	srv := testenv.Start(b)
	clients := benchClients(b, srv, 16)
	b.Run("floor/ring-16", func(b *testing.B) { benchRing(b, srv) })
	b.Run("16", func(b *testing.B) {
		ctx := context.Background()
		var (
			next  atomic.Int32
			mu    sync.Mutex
			waits []time.Duration
			turns = make([]int, len(clients))
		)
		parallel16(b)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			i := int(next.Add(1)-1) % len(clients)
			c := clients[i]
			var mine []time.Duration
			for pb.Next() {
				t0 := time.Now()
				cl, err := c.Acquire(ctx, "bench/hot")
				if err != nil {
					b.Error(err)
					return
				}
				mine = append(mine, time.Since(t0))
				if err := cl.Release(ctx); err != nil {
					b.Error(err)
					return
				}
			}
			mu.Lock()
			waits = append(waits, mine...)
			turns[i] += len(mine)
			mu.Unlock()
		})
		b.StopTimer()
		if s := b.Elapsed().Seconds(); s > 0 {
			b.ReportMetric(float64(b.N)/s, "handoffs/s")
		}
		slices.Sort(waits)
		b.ReportMetric(float64(percentile(waits, 0.5))/1e6, "p50-ms")
		b.ReportMetric(float64(percentile(waits, 0.99))/1e6, "p99-ms")
		total, least := 0, -1
		for _, n := range turns {
			total += n
			if least < 0 || n < least {
				least = n
			}
		}
		if mean := float64(total) / float64(len(turns)); mean > 0 {
			b.ReportMetric(float64(least)/mean, "fairness")
		}
	})
}

// benchRing is the floor for a contended handoff: one acknowledged write
// and one watch notification per transfer. 16 goroutines, each with its own
// connection and a watch on its own key, pass a token round a ring by
// writing the next one's key. Each transfer is one b.Loop iteration.
func benchRing(b *testing.B, srv *testenv.Server) {
	const n = 16
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	prefix := freshKey("floor.ring")
	kvs := make([]jetstream.KeyValue, n)
	ws := make([]jetstream.KeyWatcher, n)
	for i := range n {
		js, err := jetstream.New(srv.Connect(b))
		if err != nil {
			b.Fatal(err)
		}
		if kvs[i], err = js.KeyValue(ctx, subjects.ClaimsBucket); err != nil {
			b.Fatal(err)
		}
		if ws[i], err = kvs[i].Watch(ctx, fmt.Sprintf("%s.%d", prefix, i), jetstream.UpdatesOnly()); err != nil {
			b.Fatal(err)
		}
		defer ws[i].Stop()
	}
	passed := make(chan struct{}, 1)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-ctx.Done():
					return
				case e := <-ws[i].Updates():
					if e == nil {
						continue
					}
				}
				select {
				case passed <- struct{}{}:
				case <-ctx.Done():
					return
				}
				if _, err := kvs[i].Put(ctx, fmt.Sprintf("%s.%d", prefix, (i+1)%n), []byte("t")); err != nil && ctx.Err() == nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	if _, err := kvs[0].Put(ctx, prefix+".0", []byte("t")); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		<-passed
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "handoffs/s")
	cancel()
	wg.Wait()
}

// BenchmarkTryAcquireHeld: a TryAcquire refused because another agent holds
// the path (a failing create, then a read of the holder), against a raw
// failing create (publish expecting last sequence 0 on an existing key) and
// that plus the read of the holder from the stream leader.
func BenchmarkTryAcquireHeld(b *testing.B) {
	srv := testenv.Start(b)
	ctx := context.Background()
	holder := newClient(b, srv, "holder", WithClaimTTL(benchTTL))
	other := newClient(b, srv, "other")
	if _, err := holder.TryAcquire(ctx, "bench/held"); err != nil {
		b.Fatal(err)
	}
	key, _, _ := subjects.ClaimKey("test", "bench/held")

	b.Run("coord", func(b *testing.B) {
		for b.Loop() {
			if _, err := other.TryAcquire(ctx, "bench/held"); !errors.Is(err, ErrClaimed) {
				b.Fatalf("TryAcquire on a held path: %v", err)
			}
		}
		reportOps(b)
	})
	b.Run("floor/failing-create", func(b *testing.B) {
		r := newRawKV(b, srv, key)
		for b.Loop() {
			if _, err := r.create(ctx); err == nil {
				b.Fatal("create on a held key succeeded")
			}
		}
		reportOps(b)
	})
	b.Run("floor/failing-create+get", func(b *testing.B) {
		r := newRawKV(b, srv, key)
		kb := kvstore.Open(r.js, holder.claims.KeyValue(), time.Minute)
		for b.Loop() {
			if _, err := r.create(ctx); err == nil {
				b.Fatal("create on a held key succeeded")
			}
			if _, err := kb.Last(ctx, key); err != nil {
				b.Fatal(err)
			}
		}
		reportOps(b)
	})
	// The same read as a direct get (nats.go's kv.Get; the bucket allows
	// direct gets), which skips the JSON API: what kvstore could use on R1.
	b.Run("floor/failing-create+direct-get", func(b *testing.B) {
		r := newRawKV(b, srv, key)
		kv, err := r.js.KeyValue(ctx, subjects.ClaimsBucket)
		if err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if _, err := r.create(ctx); err == nil {
				b.Fatal("create on a held key succeeded")
			}
			if _, err := kv.Get(ctx, key); err != nil {
				b.Fatal(err)
			}
		}
		reportOps(b)
	})
}
