package kvstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Watcher delivers the revisions of the keys matching its filters: first
// the latest revision of each (ending with a zero Entry whose Key is "" and
// Initial is true), then every change as it happens. Close stops it.
type Watcher struct {
	kw     jetstream.KeyWatcher
	cancel context.CancelFunc // ends the context the watch was made with
}

// Event is one item from a Watcher.
type Event struct {
	Entry
	// InitialDone marks the end of the initial values; the Entry is empty.
	InitialDone bool
}

// WatchOption adjusts a watch.
type WatchOption = jetstream.WatchOpt

// UpdatesOnly skips the initial values (no InitialDone event is sent).
func UpdatesOnly() WatchOption { return jetstream.UpdatesOnly() }

// IgnoreDeletes leaves markers out of the initial values and the updates.
func IgnoreDeletes() WatchOption { return jetstream.IgnoreDeletes() }

// Watch starts watching keys matching filters (NATS wildcards allowed),
// until ctx ends or Stop is called. The caller must drain Updates promptly:
// the server's delivery to this watcher stalls while its buffer is full.
func (b *Bucket) Watch(ctx context.Context, filters []string, opts ...WatchOption) (*Watcher, error) {
	return b.WatchUntil(ctx, ctx, filters, opts...)
}

// A try at creating a watch (its consumer) is bounded: on a cluster that
// has just lost a node, the server can place the consumer on that node and
// never answer, and a node that has just restarted can drop the request
// before its routes are up; a new try gets through. The first try gets
// firstWatchAttempt, each next one twice as long, up to maxWatchAttempt.
const (
	firstWatchAttempt = 500 * time.Millisecond
	maxWatchAttempt   = 3 * time.Second
)

// watchCreate makes the nats.go watch; tests replace it to lose tries.
var watchCreate = func(ctx context.Context, kv jetstream.KeyValue, keys []string, opts ...WatchOption) (jetstream.KeyWatcher, error) {
	return kv.WatchFiltered(ctx, keys, opts...)
}

// WatchUntil is Watch for a watch that outlives the call making it: it
// lives until life ends (or Stop), and tries at creating it, each bounded
// and repeated while unanswered or refused as unavailable, go on until ctx
// ends.
func (b *Bucket) WatchUntil(life, ctx context.Context, filters []string, opts ...WatchOption) (*Watcher, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultTimeout)
		defer cancel()
	}
	fail := func(err error) (*Watcher, error) {
		return nil, fmt.Errorf("kvstore: watching %s %v: %w", b.name, filters, mapError(err))
	}
	limit := firstWatchAttempt
	pause := firstRetryPause
	for {
		// nats.go ends a watch when the context it was made with ends, so
		// the try's bound cancels that context only if the try times out.
		wctx, wcancel := context.WithCancel(life)
		attempt := time.AfterFunc(limit, wcancel)
		detach := context.AfterFunc(ctx, wcancel)
		// nats.go rewrites the slice it is given: pass a copy.
		kw, err := watchCreate(wctx, b.kv, append([]string(nil), filters...), opts...)
		timedOut, callerDone := !attempt.Stop(), !detach()
		if err == nil && !timedOut && !callerDone {
			return &Watcher{kw: kw, cancel: wcancel}, nil
		}
		wcancel()
		if err == nil {
			_ = kw.Stop()
			err = context.DeadlineExceeded
		}
		switch {
		case ctx.Err() != nil:
			return fail(ctx.Err())
		case life.Err() != nil:
			return fail(life.Err())
		case !(timedOut || transient(err)):
			return fail(err)
		}
		if !sleep(ctx, pause) {
			return fail(ctx.Err())
		}
		pause = min(2*pause, maxRetryPause)
		limit = min(2*limit, maxWatchAttempt)
	}
}

// Next blocks for the next event. ok is false when the watcher was stopped
// or its context ended.
func (w *Watcher) Next(ctx context.Context) (ev Event, ok bool) {
	select {
	case <-ctx.Done():
		return Event{}, false
	case e, open := <-w.kw.Updates():
		if !open {
			return Event{}, false
		}
		return convert(e), true
	}
}

// C returns the raw channel of nats.go entries (nil marks InitialDone);
// Convert turns each into an Event. For select loops that multiplex.
func (w *Watcher) C() <-chan jetstream.KeyValueEntry { return w.kw.Updates() }

// Convert turns a nats.go watch entry into an Event.
func Convert(e jetstream.KeyValueEntry) Event { return convert(e) }

func convert(e jetstream.KeyValueEntry) Event {
	if e == nil {
		return Event{InitialDone: true}
	}
	ev := Event{Entry: Entry{Key: e.Key(), Value: e.Value(), Revision: e.Revision(), Created: e.Created()}}
	switch e.Operation() {
	case jetstream.KeyValueDelete:
		ev.Op = OpDelete
	case jetstream.KeyValuePurge:
		// nats.go reports both purges and TTL expiries as purges; kvstore's
		// own deletes are delete markers, so a purge with no value is an
		// expiry or an operator's purge.
		ev.Op = OpPurge
	}
	return ev
}

// Stop ends the watch; Next then returns ok == false.
func (w *Watcher) Stop() error {
	defer w.cancel()
	err := w.kw.Stop()
	if err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return err
	}
	return nil
}

// List returns the live values of every key matching filter, in one pass
// over the stream (a watch read to its initial-values marker), not one round
// trip per key.
func (b *Bucket) List(ctx context.Context, filter string) ([]Entry, error) {
	var out []Entry
	err := b.ListFunc(ctx, filter, func(e Entry) { out = append(out, e) })
	return out, err
}

// ListFunc is List that hands each live entry to fn as it arrives, so the
// caller's work overlaps the transfer.
func (b *Bucket) ListFunc(ctx context.Context, filter string, fn func(Entry)) error {
	w, err := b.Watch(ctx, []string{filter}, IgnoreDeletes())
	if err != nil {
		return err
	}
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case e, open := <-w.kw.Updates():
			if !open {
				return fmt.Errorf("kvstore: listing %s %s: %w", b.name, filter, ErrUnavailable)
			}
			if e == nil {
				return nil
			}
			fn(convert(e).Entry)
		}
	}
}
