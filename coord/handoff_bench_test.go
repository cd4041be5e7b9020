package coord

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cogos-dev/coord/testenv"
)

// BenchmarkHandoff measures a whole handoff (create, see it in the
// recipient's listing, accept) beside the raw floor of one acknowledged
// js.Publish, on the same embedded server (file storage).
//
//	go test -run '^$' -bench BenchmarkHandoff -benchtime=100ms ./coord/
func BenchmarkHandoff(b *testing.B) {
	srv := testenv.Start(b)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	b.Cleanup(cancel)

	b.Run("publish-floor", func(b *testing.B) {
		js := srv.JetStream(b)
		if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "FLOOR", Subjects: []string{"floor.>"}}); err != nil {
			b.Fatal(err)
		}
		data := []byte(`{"id":"00000000-0000-0000-0000-000000000000","from":"alice","to":"bob","artifact":"src/x.go","message":"take over"}`)
		for b.Loop() {
			if _, err := js.Publish(ctx, "floor.bob", data); err != nil {
				b.Fatal(err)
			}
		}
	})

	b.Run("create-list-accept", func(b *testing.B) {
		alice := newClient(b, srv, "alice")
		bob := newClient(b, srv, "bob")
		var create, list, accept time.Duration
		for b.Loop() {
			t0 := time.Now()
			h, err := alice.Handoff(ctx, "bob", "src/x.go", "take over")
			if err != nil {
				b.Fatal(err)
			}
			t1 := time.Now()
			pending, err := bob.Handoffs(ctx, "")
			if err != nil {
				b.Fatal(err)
			}
			if len(pending) != 1 || pending[0].ID != h.ID {
				b.Fatalf("listing %d handoffs, want just %s", len(pending), h.ID)
			}
			t2 := time.Now()
			if _, err := bob.Accept(ctx, h.ID); err != nil {
				b.Fatal(err)
			}
			t3 := time.Now()
			create += t1.Sub(t0)
			list += t2.Sub(t1)
			accept += t3.Sub(t2)
		}
		n := float64(b.N)
		b.ReportMetric(float64(create.Microseconds())/n, "create-µs/op")
		b.ReportMetric(float64(list.Microseconds())/n, "list-µs/op")
		b.ReportMetric(float64(accept.Microseconds())/n, "accept-µs/op")
	})

	b.Run("with-claim", func(b *testing.B) {
		alice := newClient(b, srv, "alice2")
		bob := newClient(b, srv, "bob2")
		var cycle time.Duration
		for b.Loop() {
			if _, err := alice.TryAcquire(ctx, "bench/claimed.go"); err != nil {
				b.Fatal(err)
			}
			t0 := time.Now()
			h, err := alice.Handoff(ctx, "bob2", "bench/claimed.go", "", WithClaims("bench/claimed.go"))
			if err != nil {
				b.Fatal(err)
			}
			acc, err := bob.Accept(ctx, h.ID)
			if err != nil || len(acc.NotTransferred) != 0 {
				b.Fatalf("Accept: %v %v", err, acc.NotTransferred)
			}
			cycle += time.Since(t0)
			if err := bob.ReleasePath(ctx, "bench/claimed.go"); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(cycle.Microseconds())/float64(b.N), "handoff+accept-µs/op")
	})

	// Listing cost follows the pending handoffs, not the archive: carol has
	// one pending handoff and 1,000 decided ones.
	b.Run("list-1-pending-1000-archived", func(b *testing.B) {
		alice := newClient(b, srv, "alice3")
		carol := newClient(b, srv, "carol3")
		for range 1000 {
			h, err := alice.Handoff(ctx, "carol3", "x", "")
			if err != nil {
				b.Fatal(err)
			}
			if _, err := carol.Accept(ctx, h.ID); err != nil {
				b.Fatal(err)
			}
		}
		if _, err := alice.Handoff(ctx, "carol3", "x", ""); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			got, err := carol.Handoffs(ctx, "")
			if err != nil || len(got) != 1 {
				b.Fatalf("listing: %d, %v", len(got), err)
			}
		}
	})
}
