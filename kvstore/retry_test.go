package kvstore

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// A write that finds no stream to take it (no responders: nothing stored)
// is sent again until the stream is back or the context ends, as it is
// while a cluster re-forms after losing a node.
func TestWriteRetriesWhileNoStreamAnswers(t *testing.T) {
	_, js, b := newBucket(t)
	ctx := testCtx(t)
	if err := js.DeleteStream(ctx, b.Stream()); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	start := time.Now()
	_, err := b.Put(short, "k", []byte("v"), 0)
	cancel()
	if !errors.Is(err, ErrUnavailable) && !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Put with no stream: %v, want unavailable or deadline", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("Put with no stream took %v past a 300ms deadline", took)
	}

	// Later than nats.go's own two retries (250ms apart) would reach.
	back := time.AfterFunc(1200*time.Millisecond, func() {
		if _, err := EnsureBucket(ctx, js, BucketConfig{Name: "kvtest", MarkerTTL: time.Second}); err != nil {
			t.Errorf("re-creating the bucket: %v", err)
		}
	})
	defer back.Stop()
	rev, err := b.Put(ctx, "k", []byte("v"), 0)
	if err != nil {
		t.Fatalf("Put while the stream comes back: %v", err)
	}
	e, err := b.Get(ctx, "k")
	if err != nil || e.Revision != rev || string(e.Value) != "v" {
		t.Fatalf("after the retried Put: %+v, %v; want revision %d", e, err, rev)
	}
}

// A read with no responders (here: a direct get on a stream that is gone)
// is sent again until it is answered.
func TestReadRetriesWhileNoStreamAnswers(t *testing.T) {
	_, js, b := newBucket(t)
	if !b.direct {
		t.Skip("bucket does not use direct gets")
	}
	ctx := testCtx(t)
	if err := js.DeleteStream(ctx, b.Stream()); err != nil {
		t.Fatal(err)
	}
	back := time.AfterFunc(400*time.Millisecond, func() {
		if _, err := EnsureBucket(ctx, js, BucketConfig{Name: "kvtest", MarkerTTL: time.Second}); err != nil {
			t.Errorf("re-creating the bucket: %v", err)
		}
	})
	defer back.Stop()
	start := time.Now()
	_, err := b.Last(ctx, "k")
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("Last while the stream comes back: %v, want ErrNotFound from the new stream", err)
	}
	if took := time.Since(start); took < 300*time.Millisecond {
		t.Fatalf("Last answered after %v, before the stream was back", took)
	}
}

func TestTransient(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{mapError(errors.New("x")), false},
		{ErrRevisionMismatch, false},
		{errDirectTimeout, true},
	} {
		if got := transient(tc.err); got != tc.want {
			t.Errorf("transient(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// A revision-checked write sent again after an unanswered try whose copy
// was stored fails its check; the key's last revision then carries the
// write's ID, and send answers with that revision. A write whose check
// fails because someone else wrote the key still reports the mismatch.
func TestResentWriteFindsItsStoredCopy(t *testing.T) {
	_, js, b := newBucket(t)
	ctx := testCtx(t)
	rev, err := b.Put(ctx, "k", []byte("v1"), 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		ttl  time.Duration
	}{{"update", 0}, {"update with ttl", 5 * time.Second}} {
		m, err := b.write("k", []byte("v2"), nil, rev, true, tc.ttl)
		if err != nil {
			t.Fatal(err)
		}
		// The first try: stored, its ack lost on the way.
		ack, err := js.PublishMsg(ctx, m)
		if err != nil {
			t.Fatal(err)
		}
		got, err := b.send(ctx, "k", m, 1)
		if err != nil || got != ack.Sequence {
			t.Fatalf("%s: resend after a stored try = %d, %v; want revision %d", tc.name, got, err, ack.Sequence)
		}
		if first, err := b.send(ctx, "k", m, 0); !errors.Is(err, ErrRevisionMismatch) {
			t.Fatalf("%s: a first try at a stale revision = %d, %v; want a mismatch", tc.name, first, err)
		}
		rev = ack.Sequence
	}
	// Someone else wrote the key after the revision this write expects.
	m, err := b.write("k", []byte("mine"), nil, rev, true, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Put(ctx, "k", []byte("theirs"), 0); err != nil {
		t.Fatal(err)
	}
	if got, err := b.send(ctx, "k", m, 1); !errors.Is(err, ErrRevisionMismatch) {
		t.Fatalf("resend whose check fails for another's write = %d, %v; want a mismatch", got, err)
	}
}

// The hand-read acknowledgement must agree with encoding/json on every
// answer the server gives, and fall back to it for anything unusual.
func TestParseAck(t *testing.T) {
	for _, tc := range []struct {
		in     string
		stream string
		seq    uint64
		err    error // nil: a good ack
	}{
		{`{"stream":"KV_coord-claims","seq":12}`, "KV_coord-claims", 12, nil},
		{`{"stream":"S","seq":18446744073709551615}`, "S", 18446744073709551615, nil},
		{`{"stream":"S","seq":7,"duplicate":true}`, "S", 7, nil},
		{`{"stream":"S","domain":"hub","seq":7}`, "S", 7, nil},
		{`{"stream":"S","seq":99999999999999999999}`, "", 0, jetstream.ErrInvalidJSAck},
		{`{"stream":"S","seq":1x}`, "", 0, jetstream.ErrInvalidJSAck},
		{`{"stream":"","seq":1}`, "", 0, jetstream.ErrInvalidJSAck},
		{`{"seq":1}`, "", 0, jetstream.ErrInvalidJSAck},
		{`not json`, "", 0, jetstream.ErrInvalidJSAck},
		{``, "", 0, jetstream.ErrInvalidJSAck},
		{`{"error":{"code":400,"err_code":10071,"description":"wrong last sequence: 5"},"stream":"S","seq":0}`, "", 0, ErrRevisionMismatch},
	} {
		ack, err := parseAck([]byte(tc.in))
		if tc.err != nil {
			if !errors.Is(mapError(err), tc.err) {
				t.Errorf("parseAck(%s) = %v, %v; want %v", tc.in, ack, err, tc.err)
			}
			continue
		}
		if err != nil || ack.Stream != tc.stream || ack.Sequence != tc.seq {
			t.Errorf("parseAck(%s) = %+v, %v; want %s/%d", tc.in, ack, err, tc.stream, tc.seq)
		}
	}
}

// A watch whose first create goes unanswered (as one sent just as a server
// restarts does) is created again after the try's bound, not left hanging
// until the caller's deadline; the watch then works and lives on after the
// call that made it.
func TestWatchCreateRetriesUnansweredTry(t *testing.T) {
	_, _, b := newBucket(t)
	ctx := testCtx(t)
	var tries atomic.Int32
	create := watchCreate
	watchCreate = func(ctx context.Context, kv jetstream.KeyValue, keys []string, opts ...WatchOption) (jetstream.KeyWatcher, error) {
		if tries.Add(1) == 1 {
			<-ctx.Done() // the first try's answer never comes
			return nil, ctx.Err()
		}
		return create(ctx, kv, keys, opts...)
	}
	t.Cleanup(func() { watchCreate = create })
	callCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	start := time.Now()
	w, err := b.WatchUntil(ctx, callCtx, []string{"k"}, UpdatesOnly())
	cancel() // the call is over; the watch lives on
	if err != nil {
		t.Fatalf("WatchUntil: %v after %d tries", err, tries.Load())
	}
	defer w.Stop()
	if took := time.Since(start); tries.Load() != 2 || took > 5*time.Second {
		t.Fatalf("%d tries in %v; want 2, well within the caller's 10 s", tries.Load(), took)
	}
	rev, err := b.Put(ctx, "k", []byte("v"), 0)
	if err != nil {
		t.Fatal(err)
	}
	if ev, ok := w.Next(ctx); !ok || ev.Revision != rev {
		t.Fatalf("watch after a retried create: %+v, %v; want revision %d", ev, ok, rev)
	}

	// A caller whose context ends while tries go unanswered gets its
	// context's error, not a hang.
	watchCreate = func(ctx context.Context, kv jetstream.KeyValue, keys []string, opts ...WatchOption) (jetstream.KeyWatcher, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	start = time.Now()
	if _, err := b.Watch(short, []string{"k"}); !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 2*time.Second {
		t.Fatalf("Watch with every try unanswered = %v after %v; want the caller's deadline", err, time.Since(start))
	}
}
