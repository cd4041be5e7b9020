package coord

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cogos-dev/coord/subjects"
	"github.com/cogos-dev/coord/testenv"
)

// benchBody is a stored broadcast of a typical size, for the raw floors.
func benchBody(b *testing.B) []byte {
	body, err := json.Marshal(wireBroadcast{Channel: "bench", Agent: "bench", Message: strings.Repeat("m", 100), Timestamp: time.Now()})
	if err != nil {
		b.Fatal(err)
	}
	return body
}

// BenchmarkBroadcastPublish: an acknowledged coord Publish beside the raw
// js.Publish it is made of, same stream, same body size, same run.
func BenchmarkBroadcastPublish(b *testing.B) {
	srv := testenv.Start(b)
	c := newClient(b, srv, "bench")
	ctx := context.Background()
	msg := strings.Repeat("m", 100)
	if _, err := c.Publish(ctx, "bench", msg); err != nil { // provisions the stream
		b.Fatal(err)
	}
	b.Run("coord", func(b *testing.B) {
		for b.Loop() {
			if _, err := c.Publish(ctx, "bench", msg); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("raw", func(b *testing.B) {
		js := srv.JetStream(b)
		subj, _ := subjects.BroadcastSubject("test", "bench")
		body := benchBody(b)
		for b.Loop() {
			if _, err := js.Publish(ctx, subj, body); err != nil {
				b.Fatal(err)
			}
		}
	})
	// paired alternates the two, so both see the same load (the machine is
	// shared): p50 of each, and the median extra cost of coord's Publish.
	b.Run("paired", func(b *testing.B) {
		js := srv.JetStream(b)
		subj, _ := subjects.BroadcastSubject("test", "bench")
		body := benchBody(b)
		var coordT, rawT []time.Duration
		for b.Loop() {
			start := time.Now()
			if _, err := c.Publish(ctx, "bench", msg); err != nil {
				b.Fatal(err)
			}
			mid := time.Now()
			if _, err := js.Publish(ctx, subj, body); err != nil {
				b.Fatal(err)
			}
			coordT = append(coordT, mid.Sub(start))
			rawT = append(rawT, time.Since(mid))
		}
		slices.Sort(coordT)
		slices.Sort(rawT)
		b.ReportMetric(float64(coordT[len(coordT)/2].Nanoseconds())/1e3, "coord-p50-µs")
		b.ReportMetric(float64(rawT[len(rawT)/2].Nanoseconds())/1e3, "raw-p50-µs")
	})
}

// BenchmarkBroadcastFanout: messages published (async) to one channel with
// 50 live subscribers spread over 10 connections; delivered-msgs/s counts
// every message received by every subscriber. The raw floor reads with 50
// plain ordered consumers on the same connections layout.
func BenchmarkBroadcastFanout(b *testing.B) {
	const subs, conns = 50, 10
	srv := testenv.Start(b)
	ctx := context.Background()
	clients := make([]*Client, conns)
	for i := range clients {
		clients[i] = newClient(b, srv, fmt.Sprintf("sub%d", i))
	}
	if _, err := clients[0].Publish(ctx, "fanout", "provision"); err != nil {
		b.Fatal(err)
	}
	subj, _ := subjects.BroadcastSubject("test", "fanout")
	pubJS := srv.JetStream(b)
	body := benchBody(b)

	// run publishes b.N messages and waits until every reader got them all.
	run := func(b *testing.B, readers int, got *atomic.Int64) {
		want := int64(readers) * int64(b.N)
		b.ResetTimer()
		start := time.Now()
		for range b.N {
			if _, err := pubJS.PublishAsync(subj, body); err != nil {
				b.Fatal(err)
			}
		}
		select {
		case <-pubJS.PublishAsyncComplete():
		case <-time.After(30 * time.Second):
			b.Fatal("publishes not acknowledged")
		}
		deadline := time.Now().Add(60 * time.Second)
		for got.Load() < want {
			if time.Now().After(deadline) {
				b.Fatalf("delivered %d of %d", got.Load(), want)
			}
			time.Sleep(200 * time.Microsecond)
		}
		elapsed := time.Since(start)
		b.StopTimer()
		b.ReportMetric(float64(want)/elapsed.Seconds(), "delivered-msgs/s")
	}

	b.Run("coord", func(b *testing.B) {
		var got atomic.Int64
		sctx, cancel := context.WithCancel(ctx)
		var wg sync.WaitGroup
		for i := range subs {
			s, err := clients[i%conns].Subscribe(sctx, "fanout")
			if err != nil {
				b.Fatal(err)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range s.C() {
					got.Add(1)
				}
			}()
		}
		run(b, subs, &got)
		cancel()
		wg.Wait()
	})
	rawRun := func(b *testing.B, hop bool) {
		var got atomic.Int64
		var its []jetstream.MessagesContext
		var wg sync.WaitGroup
		for i := range subs {
			st, err := clients[i%conns].JetStream().Stream(ctx, subjects.BroadcastStream)
			if err != nil {
				b.Fatal(err)
			}
			oc, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
				FilterSubjects: []string{subj}, DeliverPolicy: jetstream.DeliverNewPolicy,
			})
			if err != nil {
				b.Fatal(err)
			}
			it, err := oc.Messages(jetstream.PullMaxMessages(subscriptionBuffer))
			if err != nil {
				b.Fatal(err)
			}
			its = append(its, it)
			wg.Add(1)
			if !hop {
				go func() {
					defer wg.Done()
					for {
						if _, err := it.Next(); err != nil {
							return
						}
						got.Add(1)
					}
				}()
				continue
			}
			// The same with a channel between reader and consumer, as a
			// Subscription has.
			ch := make(chan jetstream.Msg, subscriptionBuffer)
			go func() {
				defer close(ch)
				for {
					m, err := it.Next()
					if err != nil {
						return
					}
					ch <- m
				}
			}()
			go func() {
				defer wg.Done()
				for range ch {
					got.Add(1)
				}
			}()
		}
		run(b, subs, &got)
		for _, it := range its {
			it.Stop()
		}
		wg.Wait()
	}
	b.Run("raw", func(b *testing.B) { rawRun(b, false) })
	b.Run("raw-chan", func(b *testing.B) { rawRun(b, true) })
}

// BenchmarkBroadcastList: listing a channel of 1,000 messages (one ordered
// consumer read to the end).
func BenchmarkBroadcastList(b *testing.B) {
	srv := testenv.Start(b)
	c := newClient(b, srv, "bench")
	ctx := context.Background()
	js := srv.JetStream(b)
	if _, err := c.Publish(ctx, "list", "first"); err != nil {
		b.Fatal(err)
	}
	subj, _ := subjects.BroadcastSubject("test", "list")
	body := benchBody(b)
	for range 999 {
		if _, err := js.PublishAsync(subj, body); err != nil {
			b.Fatal(err)
		}
	}
	<-js.PublishAsyncComplete()
	for b.Loop() {
		got, err := c.Broadcasts(ctx, "list", 0)
		if err != nil || len(got) != 1000 {
			b.Fatalf("listing: %v, %d messages", err, len(got))
		}
	}
}
