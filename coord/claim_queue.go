package coord

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/cogos-dev/coord/kvstore"
	"github.com/cogos-dev/coord/subjects"
)

// waitQueue is a client's side of the waiter queues: one watch on all of
// the client's waiter keys, the waits it wakes, and the client's session.
type waitQueue struct {
	c *Client

	smu         sync.Mutex
	active      int                  // waits in progress
	sessionLive bool                 // the session keeper goroutine runs
	sessionAt   time.Time            // last successful session write
	seen        map[string]time.Time // other clients' sessions seen live

	mu     sync.Mutex
	w      *kvstore.Watcher
	waits  map[string]waitEntry     // waiter key -> the wait on it
	locks  map[string]chan struct{} // claim key -> local turn (one wait per key per client)
	closed bool
}

func newWaitQueue(c *Client) *waitQueue {
	return &waitQueue{c: c, waits: make(map[string]waitEntry), locks: make(map[string]chan struct{})}
}

// lockKey serializes this client's waits on one claim key (they share one
// waiter key). The second waiter of the same agent gets the claim by the
// re-claim rule as soon as the first has it.
func (q *waitQueue) lockKey(ctx context.Context, key string) (func(), error) {
	q.mu.Lock()
	ch, ok := q.locks[key]
	if !ok {
		ch = make(chan struct{}, 1)
		q.locks[key] = ch
	}
	q.mu.Unlock()
	select {
	case ch <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return func() {
		<-ch
		q.mu.Lock()
		if len(ch) == 0 && q.locks[key] == ch {
			delete(q.locks, key)
		}
		q.mu.Unlock()
	}, nil
}

// ensureWatch starts the client's watch on its waiter keys, once.
func (q *waitQueue) ensureWatch(ctx context.Context) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return ErrClosed
	}
	if q.w != nil {
		return nil
	}
	w, err := q.startWatch(ctx)
	if err != nil {
		return wrapNATS(err)
	}
	q.w = w
	// Listen for reconnects before any wait relies on the watch.
	reconnected := q.c.nc.StatusChanged(nats.CONNECTED)
	if !q.c.goTracked(func(cctx context.Context) {
		q.dispatch(cctx, w, reconnected)
	}) {
		q.c.nc.RemoveStatusListener(reconnected)
		_ = w.Stop()
		q.w = nil
		return ErrClosed
	}
	return nil
}

// startWatch creates the watch on the client's waiter keys (each try
// bounded and repeated, see kvstore.WatchUntil) until ctx ends. The watch
// lives until the client closes or it is stopped: nats.go unsubscribes a
// watch when the context it was created with ends, so it must not be the
// caller's (an Acquire's deadline would silently end every other wait's
// wake-ups).
func (q *waitQueue) startWatch(ctx context.Context) (*kvstore.Watcher, error) {
	return q.c.waiters.WatchUntil(q.c.ctx, ctx, []string{subjects.WaiterClientFilter(q.c.id)}, kvstore.UpdatesOnly())
}

// dispatch wakes the wait whose key was deleted or expired. It drains the
// watch promptly so the server never stalls on it.
func (q *waitQueue) dispatch(ctx context.Context, w *kvstore.Watcher, reconnected chan nats.Status) {
	// nats.go's watcher notices a restarted server only after its
	// heartbeats go missing (about 20 s); watch again at once on reconnect
	// and have every wait re-read where it stands.
	defer q.c.nc.RemoveStatusListener(reconnected)
	defer func() {
		q.mu.Lock()
		if q.w == w {
			q.w = nil
		}
		q.mu.Unlock()
		_ = w.Stop()
	}()
	for {
		var ev kvstore.Event
		select {
		case <-ctx.Done():
			return
		case <-reconnected:
			// Every wait re-reads where it stands at once: a grant made
			// while we were away is taken without waiting for the new
			// watch (whose create can go unanswered for a while after a
			// node restarts), and again once the new watch is in place,
			// so a release between the two reads is not missed.
			q.wakeAll(wakeup{recheck: true})
			// Bounded: right after a node is lost the create can go
			// unanswered, and this goroutine delivers every wake-up.
			rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
			nw, err := q.startWatch(rctx)
			rcancel()
			if err != nil {
				q.c.log.Warn().Err(err).Msg("could not watch waiter keys again after reconnect; keeping the old watch")
			} else {
				_ = w.Stop()
				w = nw
				q.mu.Lock()
				q.w = nw
				q.mu.Unlock()
			}
			q.wakeAll(wakeup{recheck: true})
			continue
		case raw, ok := <-w.C():
			if !ok {
				return
			}
			ev = kvstore.Convert(raw)
		}
		if ev.InitialDone || ev.Op == kvstore.OpPut {
			continue
		}
		var wu wakeup
		if ev.Op == kvstore.OpDelete && len(ev.Value) > 0 {
			if err := json.Unmarshal(ev.Value, &wu); err != nil {
				q.c.log.Warn().Err(err).Str("key", ev.Key).Msg("unreadable grant note; re-reading the claim")
				wu = wakeup{}
			}
			if wu.Taken {
				continue // our own removal after taking the claim
			}
		}
		wu.keyRev = ev.Revision
		q.mu.Lock()
		w, ok := q.waits[ev.Key]
		q.mu.Unlock()
		if wu.Revision != 0 && (!ok || w.lease != wu.Lease) {
			// A grant to a wait of ours that is over (its enqueue was
			// stored after it gave up, say): its releaser counts that
			// lease as the holder; pass the claim on.
			q.passStray(ev.Key, wu)
			continue
		}
		if ok {
			deliver(w.ch, wu)
		}
	}
}

// deliver hands a wake-up to a wait without blocking. When one is pending
// already, the newer one replaces it: events about one key come in order,
// and the pending one may be about an earlier key of ours, which the wait
// ignores (dropping the newer one would lose a nudge or a grant). A recheck
// does not replace a pending grant: it would find that grant anyway.
func deliver(ch chan wakeup, wu wakeup) {
	select {
	case ch <- wu:
		return
	default:
	}
	select {
	case old := <-ch:
		if wu.recheck && old.Revision != 0 {
			wu = old
		}
	default:
	}
	select {
	case ch <- wu:
	default:
	}
}

func (q *waitQueue) wakeAll(wu wakeup) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, w := range q.waits {
		deliver(w.ch, wu)
	}
}

// sessionRecord is stored under a client's session key.
type sessionRecord struct {
	Agent  string    `json:"agent"`
	Client string    `json:"client"`
	Since  time.Time `json:"since"`
}

// Sessions seen live recently are trusted for sessionTTL/3 without another
// read, keeping that read off the hand-over's critical path. The price: a
// waiter whose client died in that window may be handed the claim, which
// then stalls until the claim's lease runs out (as with a holder crash).
const sessionTrust = sessionTTL / 3

func (q *waitQueue) sessionSeen(client string) bool {
	q.smu.Lock()
	defer q.smu.Unlock()
	at, ok := q.seen[client]
	return ok && time.Since(at) < sessionTrust
}

func (q *waitQueue) noteSession(client string) {
	q.smu.Lock()
	defer q.smu.Unlock()
	if q.seen == nil || len(q.seen) >= 4096 {
		q.seen = make(map[string]time.Time)
	}
	q.seen[client] = time.Now()
}

func (q *waitQueue) beginWait() {
	q.smu.Lock()
	q.active++
	q.smu.Unlock()
}

func (q *waitQueue) endWait() {
	q.smu.Lock()
	q.active--
	q.smu.Unlock()
}

// ensureSession makes sure the client's session key is live before a
// waiter key that depends on it is written, and keeps it alive while the
// client has waits.
func (q *waitQueue) ensureSession(ctx context.Context) error {
	q.smu.Lock()
	fresh := time.Since(q.sessionAt) < sessionTTL/3
	q.smu.Unlock()
	if !fresh {
		if err := q.writeSession(ctx); err != nil {
			return err
		}
	}
	q.smu.Lock()
	defer q.smu.Unlock()
	if q.sessionLive {
		return nil
	}
	q.sessionLive = true
	if !q.c.goTracked(q.keepSession) {
		q.sessionLive = false
		return ErrClosed
	}
	return nil
}

func (q *waitQueue) writeSession(ctx context.Context) error {
	rec, _ := json.Marshal(sessionRecord{Agent: q.c.opts.agent, Client: q.c.id, Since: time.Now().UTC()})
	sent := time.Now()
	if _, err := q.c.waiters.Put(ctx, subjects.SessionKey(q.c.id), rec, sessionTTL); err != nil {
		return wrapNATS(err)
	}
	q.smu.Lock()
	q.sessionAt = sent
	q.smu.Unlock()
	return nil
}

// keepSession renews the session while the client has waits, then stops
// (the key expires by itself).
func (q *waitQueue) keepSession(ctx context.Context) {
	t := time.NewTicker(sessionTTL / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		q.smu.Lock()
		if q.active == 0 {
			q.sessionLive = false
			q.smu.Unlock()
			return
		}
		q.smu.Unlock()
		wctx, cancel := context.WithTimeout(ctx, sessionTTL/3)
		if err := q.writeSession(wctx); err != nil {
			q.c.log.Warn().Err(err).Msg("could not renew the waiting session; retrying")
		}
		cancel()
	}
}

// waitEntry is a wait in progress: where its wake-ups go, and the lease a
// grant to it names.
type waitEntry struct {
	ch    chan wakeup
	lease string
}

func (q *waitQueue) register(wkey, lease string) chan wakeup {
	ch := make(chan wakeup, 1)
	q.mu.Lock()
	q.waits[wkey] = waitEntry{ch: ch, lease: lease}
	q.mu.Unlock()
	return ch
}

// relabel records the lease a wait queues under now.
func (q *waitQueue) relabel(wkey, lease string) {
	q.mu.Lock()
	if w, ok := q.waits[wkey]; ok {
		w.lease = lease
		q.waits[wkey] = w
	}
	q.mu.Unlock()
}

// passStray passes on, in the background, a claim granted to a wait of
// this client that is over: once the grant's write is stored (it can come
// after the note), a claim still carrying the stray lease goes to the next
// waiter, or is deleted. A forged note costs a look at the claim.
func (q *waitQueue) passStray(wkey string, wu wakeup) {
	key := strings.TrimPrefix(wkey, q.c.id+".")
	q.c.goTracked(func(ctx context.Context) {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if err := q.passOnGranted(ctx, key, wu.Lease, wu.Revision); err != nil {
			q.c.log.Warn().Err(err).Str("key", key).Msg("could not pass on a claim granted to a wait that had ended")
		}
	})
}

func (q *waitQueue) unregister(wkey string) {
	q.mu.Lock()
	delete(q.waits, wkey)
	q.mu.Unlock()
}

func (q *waitQueue) stop() {
	q.mu.Lock()
	q.closed = true
	w := q.w
	q.w = nil
	q.mu.Unlock()
	if w != nil {
		_ = w.Stop()
	}
}
