package kvstore

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cogos-dev/coord/testenv"
)

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// newBucket provisions a fresh bucket on a fresh server.
func newBucket(t *testing.T) (*testenv.Server, jetstream.JetStream, *Bucket) {
	t.Helper()
	srv := testenv.Start(t)
	js := srv.JetStream(t)
	b, err := EnsureBucket(testCtx(t), js, BucketConfig{Name: "kvtest", MarkerTTL: time.Second})
	if err != nil {
		t.Fatalf("EnsureBucket: %v", err)
	}
	return srv, js, b
}

// waitOp waits (bounded) until the key's latest revision is op.
func waitOp(t *testing.T, b *Bucket, key string, op Op, within time.Duration) Entry {
	t.Helper()
	ctx := testCtx(t)
	deadline := time.Now().Add(within)
	for {
		e, err := b.Last(ctx, key)
		if err == nil && e.Op == op {
			return e
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: latest is %+v, %v; want %s within %v", key, e, err, op, within)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestCreate(t *testing.T) {
	_, _, b := newBucket(t)
	ctx := testCtx(t)

	rev, err := b.Create(ctx, "k", []byte("v1"), 0)
	if err != nil {
		t.Fatalf("Create on a fresh key: %v", err)
	}
	_, err = b.Create(ctx, "k", []byte("v2"), 0)
	var ex *ExistsError
	if !errors.Is(err, ErrKeyExists) || !errors.As(err, &ex) || ex.Entry.Revision != rev || string(ex.Entry.Value) != "v1" || !ex.Entry.Live() {
		t.Fatalf("Create on a live key: %v; want *ExistsError with revision %d and value v1", err, rev)
	}
	// A stale hint (here an older revision) cannot make a create overwrite
	// a live value. (A hint must be a marker's revision: given the live
	// value's own revision, CreateAfter overwrites it, by design.)
	if _, err := b.CreateAfter(ctx, "k", []byte("v2"), 0, rev-1+1000); !errors.Is(err, ErrKeyExists) {
		t.Fatalf("CreateAfter(stale hint) on a live key: %v, want ErrKeyExists", err)
	}

	mrev, err := b.Delete(ctx, "k", rev)
	if err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if mrev <= rev {
		t.Fatalf("delete marker revision %d not after %d", mrev, rev)
	}
	last, err := b.Last(ctx, "k")
	if err != nil || last.Op != OpDelete || last.Revision != mrev || last.Live() {
		t.Fatalf("Last after Delete = %+v, %v; want delete marker at %d", last, err, mrev)
	}
	if e, err := b.Get(ctx, "k"); !errors.Is(err, ErrNotFound) || e.Revision != mrev {
		t.Fatalf("Get on a delete marker = %+v, %v; want ErrNotFound with the marker", e, err)
	}

	t.Run("hint right", func(t *testing.T) {
		r, err := b.CreateAfter(ctx, "k", []byte("v3"), 0, mrev)
		if err != nil || r != mrev+1 {
			t.Fatalf("CreateAfter(marker revision) = %d, %v; want %d", r, err, mrev+1)
		}
		if mrev, err = b.Delete(ctx, "k", r); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("hint stale", func(t *testing.T) {
		r, err := b.CreateAfter(ctx, "k", []byte("v4"), 0, 1)
		if err != nil || r != mrev+1 {
			t.Fatalf("CreateAfter(stale hint) = %d, %v; want %d", r, err, mrev+1)
		}
		if mrev, err = b.Delete(ctx, "k", r); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("no hint over delete marker", func(t *testing.T) {
		if _, err := b.Create(ctx, "k", []byte("v5"), 0); err != nil {
			t.Fatalf("Create over a delete marker: %v", err)
		}
	})
	t.Run("over expiry marker", func(t *testing.T) {
		r, err := b.Create(ctx, "e", []byte("short"), time.Second)
		if err != nil {
			t.Fatal(err)
		}
		m := waitOp(t, b, "e", OpExpire, 3*time.Second)
		if m.Revision <= r {
			t.Fatalf("expiry marker %d not after %d", m.Revision, r)
		}
		if _, err := b.Get(ctx, "e"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Get on an expired key: %v, want ErrNotFound", err)
		}
		if _, err := b.Create(ctx, "e", []byte("again"), 0); err != nil {
			t.Fatalf("Create over an expiry marker: %v", err)
		}
	})
}

func TestUpdateKeepsTTL(t *testing.T) {
	_, _, b := newBucket(t)
	ctx := testCtx(t)
	rev, err := b.Create(ctx, "lease", []byte("a"), 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Update(ctx, "lease", []byte("b"), rev-1+100, time.Second); !errors.Is(err, ErrRevisionMismatch) {
		t.Fatalf("Update with a wrong revision: %v, want ErrRevisionMismatch", err)
	}
	rev2, err := b.Update(ctx, "lease", []byte("b"), rev, time.Second)
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	e, err := b.Get(ctx, "lease")
	if err != nil || e.Revision != rev2 || string(e.Value) != "b" || e.TTL != time.Second {
		t.Fatalf("Get after Update = %+v, %v; want value b, revision %d, TTL 1s", e, err, rev2)
	}
	// The renewed TTL (1s) governs, not the first one (3s): gone well before 3s.
	start := time.Now()
	waitOp(t, b, "lease", OpExpire, 2500*time.Millisecond)
	t.Logf("expired %v after its 1s renewal", time.Since(start))
	if _, err := b.Update(ctx, "lease", []byte("c"), rev2, time.Second); !errors.Is(err, ErrRevisionMismatch) {
		t.Fatalf("renewing an expired key at its old revision: %v, want ErrRevisionMismatch", err)
	}
	// TTLs round up to whole seconds.
	r, err := b.Create(ctx, "round", []byte("x"), 1100*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if e, err := b.Get(ctx, "round"); err != nil || e.TTL != 2*time.Second || e.Revision != r {
		t.Fatalf("TTL of a 1.1s create = %v, %v; want 2s", e.TTL, err)
	}
}

func TestStaleRevision(t *testing.T) {
	_, _, b := newBucket(t)
	ctx := testCtx(t)
	old, err := b.Create(ctx, "k", []byte("v"), 0)
	if err != nil {
		t.Fatal(err)
	}
	cur, err := b.Update(ctx, "k", []byte("w"), old, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Update(ctx, "k", []byte("x"), old, 5*time.Second); !errors.Is(err, ErrRevisionMismatch) {
		t.Fatalf("Update at a stale revision: %v, want ErrRevisionMismatch", err)
	}
	if _, err := b.Delete(ctx, "k", old); !errors.Is(err, ErrRevisionMismatch) {
		t.Fatalf("Delete at a stale revision: %v, want ErrRevisionMismatch", err)
	}
	var apiErr *jetstream.APIError
	if _, err := b.Delete(ctx, "k", old); !errors.As(err, &apiErr) || apiErr.ErrorCode != codeWrongLastSequence {
		t.Fatalf("mapped error lost the server's error: %v", err)
	}
	e, err := b.Get(ctx, "k")
	if err != nil || e.Revision != cur || string(e.Value) != "w" {
		t.Fatalf("after stale writes Get = %+v, %v; want w at %d", e, err, cur)
	}
	// Delete with revision 0 is unconditional.
	if _, err := b.Delete(ctx, "k", 0); err != nil {
		t.Fatalf("unconditional Delete: %v", err)
	}
	if _, err := b.Get(ctx, "k"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get after Delete: %v", err)
	}
}

func TestLastAndGetMissing(t *testing.T) {
	_, _, b := newBucket(t)
	ctx := testCtx(t)
	if _, err := b.Last(ctx, "never"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Last on a key never written: %v, want ErrNotFound", err)
	}
	if _, err := b.Get(ctx, "never"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get on a key never written: %v, want ErrNotFound", err)
	}
	// An operator's purge (nats kv purge) is a marker too.
	if _, err := b.Put(ctx, "p", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	if err := b.KeyValue().Purge(ctx, "p"); err != nil {
		t.Fatal(err)
	}
	if e, err := b.Last(ctx, "p"); err != nil || e.Op != OpPurge {
		t.Fatalf("Last after purge = %+v, %v; want purge marker", e, err)
	}
	if _, err := b.Get(ctx, "p"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get after purge: %v", err)
	}
}

func TestInvalidKeys(t *testing.T) {
	_, _, b := newBucket(t)
	ctx := testCtx(t)
	for _, k := range []string{"", ".a", "a.", "a..b", "a b", "*", "a.>", "a\x00", "é"} {
		if _, err := b.Create(ctx, k, nil, 0); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("Create(%q) = %v, want ErrInvalidKey", k, err)
		}
		if _, err := b.Last(ctx, k); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("Last(%q) = %v, want ErrInvalidKey", k, err)
		}
	}
}

func TestNext(t *testing.T) {
	_, _, b := newBucket(t)
	ctx := testCtx(t)
	put := func(k string) uint64 {
		r, err := b.Put(ctx, k, []byte(k), 0)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	r1 := put("w.c1.ns.f")
	put("w.c1.ns.g")
	r3 := put("w.c2.ns.f")
	d, err := b.Delete(ctx, "w.c1.ns.f", r1)
	if err != nil {
		t.Fatal(err)
	}
	// History is 1: the delete marker replaced r1.
	want := []struct {
		rev uint64
		op  Op
	}{{r3, OpPut}, {d, OpDelete}}
	from := uint64(0)
	for i, w := range want {
		e, err := b.Next(ctx, "w.*.ns.f", from)
		if err != nil || e.Revision != w.rev || e.Op != w.op {
			t.Fatalf("Next #%d = %+v, %v; want revision %d op %s", i, e, err, w.rev, w.op)
		}
		from = e.Revision + 1
	}
	if _, err := b.Next(ctx, "w.*.ns.f", from); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Next past the end: %v, want ErrNotFound", err)
	}
	if e, err := b.Next(ctx, "w.c2.>", 0); err != nil || e.Key != "w.c2.ns.f" {
		t.Fatalf("Next(w.c2.>) = %+v, %v", e, err)
	}
}

func TestList(t *testing.T) {
	_, _, b := newBucket(t)
	ctx := testCtx(t)
	for _, k := range []string{"ns.a", "ns.b.c", "ns.d", "other.a"} {
		if _, err := b.Put(ctx, k, []byte(k), 0); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := b.Delete(ctx, "ns.d", 0); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Create(ctx, "ns.e", []byte("x"), time.Second); err != nil {
		t.Fatal(err)
	}
	waitOp(t, b, "ns.e", OpExpire, 3*time.Second)
	got, err := b.List(ctx, "ns.>")
	if err != nil {
		t.Fatal(err)
	}
	keys := make([]string, len(got))
	for i, e := range got {
		keys[i] = e.Key
		if !e.Live() || string(e.Value) != e.Key {
			t.Errorf("listed %+v: want a live value equal to its key", e)
		}
	}
	if len(keys) != 2 || keys[0] != "ns.a" || keys[1] != "ns.b.c" {
		t.Fatalf("List(ns.>) = %v; want [ns.a ns.b.c] (markers and other namespaces left out)", keys)
	}
	if empty, err := b.List(ctx, "none.>"); err != nil || len(empty) != 0 {
		t.Fatalf("List of an empty prefix = %v, %v", empty, err)
	}
}

func TestWatch(t *testing.T) {
	_, _, b := newBucket(t)
	ctx := testCtx(t)
	if _, err := b.Put(ctx, "w.old", []byte("x"), 0); err != nil {
		t.Fatal(err)
	}
	w, err := b.Watch(ctx, []string{"w.>"})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	next := func() Event {
		t.Helper()
		ev, ok := w.Next(ctx)
		if !ok {
			t.Fatal("watch ended")
		}
		return ev
	}
	if ev := next(); ev.Key != "w.old" || ev.Op != OpPut {
		t.Fatalf("initial value = %+v", ev)
	}
	if ev := next(); !ev.InitialDone {
		t.Fatalf("want InitialDone, got %+v", ev)
	}
	r, err := b.Put(ctx, "w.k", []byte("v"), 0)
	if err != nil {
		t.Fatal(err)
	}
	if ev := next(); ev.Key != "w.k" || ev.Revision != r || ev.Op != OpPut {
		t.Fatalf("put event = %+v", ev)
	}
	d, err := b.Delete(ctx, "w.k", r)
	if err != nil {
		t.Fatal(err)
	}
	if ev := next(); ev.Key != "w.k" || ev.Revision != d || ev.Op != OpDelete {
		t.Fatalf("delete event = %+v", ev)
	}
	if _, err := b.Create(ctx, "w.t", []byte("v"), time.Second); err != nil {
		t.Fatal(err)
	}
	// Next: the put of w.t, the server's marker for w.k's delete marker
	// expiring (bucket marker TTL 1s), and w.t's expiry: a purge-op event.
	for {
		ev := next()
		if ev.Key == "w.t" && ev.Op != OpPut {
			if ev.Op != OpPurge || len(ev.Value) != 0 {
				t.Fatalf("expiry event = %+v; want a purge-op event", ev)
			}
			break
		}
	}
	if err := w.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, ok := w.Next(ctx); ok {
		t.Fatal("Next after Stop returned an event")
	}
}

func TestUnavailable(t *testing.T) {
	srv := testenv.Start(t)
	nc := srv.Connect(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	b, err := EnsureBucket(ctx, js, BucketConfig{Name: "kvtest", MarkerTTL: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	nc.Close()
	if _, err := b.Get(ctx, "k"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Get on a closed connection: %v, want ErrUnavailable", err)
	}
	if _, err := b.Put(ctx, "k", nil, 0); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Put on a closed connection: %v, want ErrUnavailable", err)
	}
}

func TestMapError(t *testing.T) {
	cases := []struct {
		name string
		in   error
		want error
	}{
		{"wrong last sequence", &jetstream.APIError{ErrorCode: 10071}, ErrRevisionMismatch},
		{"wrong last sequence, replicated", &jetstream.APIError{ErrorCode: 10164}, ErrRevisionMismatch},
		{"no message found", &jetstream.APIError{ErrorCode: 10037}, ErrNotFound},
		{"key not found", jetstream.ErrKeyNotFound, ErrNotFound},
		{"no responders", jetstream.ErrNoStreamResponse, ErrUnavailable},
	}
	for _, tc := range cases {
		got := mapError(tc.in)
		if !errors.Is(got, tc.want) || !errors.Is(got, tc.in) {
			t.Errorf("%s: mapError(%v) = %v; want it to wrap %v and keep the original", tc.name, tc.in, got, tc.want)
		}
	}
	if mapError(nil) != nil {
		t.Error("mapError(nil) != nil")
	}
	other := &jetstream.APIError{ErrorCode: 10059}
	if got := mapError(other); got != other {
		t.Errorf("unmapped error changed: %v", got)
	}
}
