package coord

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/cogos-dev/coord/kvstore"
	"github.com/cogos-dev/coord/subjects"
)

// How a blocked Acquire works (see NATS-NOTES.md, "Waiting for a contended
// claim"): the waiter writes its own key in coord-claim-waiters
// (<client>.<claim key>) and sets the Waiters flag on the claim. A holder
// whose claim is flagged does not just delete it on release: it finds the
// oldest waiter (one next-by-subject read), writes the claim over to it
// (one revision-checked write: the claim is never free, so nobody can barge
// in) and deletes the waiter's key, which wakes that waiter alone through
// its client's single watch. Waiter keys carry a TTL and are renewed while
// waiting, so a waiter that crashed leaves the queue by itself. A holder
// that crashes is noticed by the waiters' timers at the lease's expiry.

// waiterTTL is the lease of a waiter key; the waiter renews it at a third.
const waiterTTL = 15 * time.Second

// waiterRecord is the JSON stored under a waiter key: what the claim will
// say when it is granted to this waiter.
type waiterRecord struct {
	Path       string    `json:"path"`
	Agent      string    `json:"agent"`
	Client     string    `json:"client"`
	Lease      string    `json:"lease"`
	Reason     string    `json:"reason"`
	TTLSeconds int64     `json:"ttl_seconds"`
	Since      time.Time `json:"since"`
}

func (w waiterRecord) encode() []byte {
	b, err := json.Marshal(w)
	if err != nil {
		panic(err) // plain fields: cannot fail
	}
	return b
}

// Acquire claims path, waiting while another agent holds it, until ctx ends
// (ErrTimeout when its deadline passed). Waiters are served in arrival order:
// a release hands the claim straight to the oldest waiter, and a waiter is
// woken by a push on its own key, not by polling.
func (c *Client) Acquire(ctx context.Context, path string, opts ...ClaimOption) (*Claim, error) {
	key, clean, err := c.claimKey(path)
	if err != nil {
		return nil, err
	}
	o, err := c.claimOpts(opts)
	if err != nil {
		return nil, err
	}
	cl, err := c.tryAcquire(ctx, key, clean, o)
	if !errors.Is(err, ErrClaimed) {
		return cl, err
	}
	unlock, err := c.queue.lockKey(ctx, key)
	if err != nil {
		return nil, waitErr(err, clean)
	}
	defer unlock()
	return c.queue.wait(ctx, key, clean, o)
}

func waitErr(err error, path string) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: waiting for %s: %w", ErrTimeout, path, err)
	}
	return err
}

// waitQueue is a client's side of the waiter queues: one watch on all of
// the client's waiter keys, and the waits it wakes.
type waitQueue struct {
	c *Client

	mu     sync.Mutex
	w      *kvstore.Watcher
	waits  map[string]chan struct{} // waiter key -> wake-up
	locks  map[string]chan struct{} // claim key -> local turn (one wait per key per client)
	closed bool
}

func newWaitQueue(c *Client) *waitQueue {
	return &waitQueue{c: c, waits: make(map[string]chan struct{}), locks: make(map[string]chan struct{})}
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
	w, err := q.c.waiters.Watch(ctx, []string{subjects.WaiterClientFilter(q.c.id)}, kvstore.UpdatesOnly())
	if err != nil {
		return wrapNATS(err)
	}
	q.w = w
	if !q.c.goTracked(func(cctx context.Context) { q.dispatch(cctx, w) }) {
		_ = w.Stop()
		q.w = nil
		return ErrClosed
	}
	return nil
}

// dispatch wakes the wait whose key was deleted or expired. It drains the
// watch promptly so the server never stalls on it.
func (q *waitQueue) dispatch(ctx context.Context, w *kvstore.Watcher) {
	defer func() {
		q.mu.Lock()
		if q.w == w {
			q.w = nil
		}
		q.mu.Unlock()
		_ = w.Stop()
	}()
	for {
		ev, ok := w.Next(ctx)
		if !ok {
			return
		}
		if ev.InitialDone || ev.Op == kvstore.OpPut {
			continue
		}
		q.mu.Lock()
		ch := q.waits[ev.Key]
		q.mu.Unlock()
		if ch != nil {
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}
}

func (q *waitQueue) register(wkey string) chan struct{} {
	ch := make(chan struct{}, 1)
	q.mu.Lock()
	q.waits[wkey] = ch
	q.mu.Unlock()
	return ch
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

// wait is the blocked part of Acquire.
func (q *waitQueue) wait(ctx context.Context, key, clean string, o claimOptions) (cl *Claim, err error) {
	c := q.c
	if err := q.ensureWatch(ctx); err != nil {
		return nil, err
	}
	wkey := subjects.WaiterKey(c.id, key)
	wake := q.register(wkey)
	defer q.unregister(wkey)

	wrec := waiterRecord{
		Path:       clean,
		Agent:      c.opts.agent,
		Client:     c.id,
		Lease:      uuid.NewString(),
		Reason:     o.reason,
		TTLSeconds: int64(o.ttl / time.Second),
		Since:      time.Now().UTC(),
	}
	var wrev uint64 // revision of our waiter key; 0 while not enqueued
	defer func() {
		if err == nil {
			return
		}
		// Gave up (timeout, cancel, close): leave the queue, and if the
		// claim was handed to us meanwhile, pass it on.
		cctx, cancel := cleanupContext()
		defer cancel()
		if wrev != 0 {
			if _, derr := c.waiters.Delete(cctx, wkey, wrev); derr != nil && !errors.Is(derr, kvstore.ErrRevisionMismatch) {
				c.log.Warn().Err(derr).Str("path", clean).Msg("could not remove waiter key; it expires by itself")
			}
		}
		if e, gerr := c.claims.Get(cctx, key); gerr == nil {
			if rec, derr := decodeClaim(key, e.Value); derr == nil && rec.Lease == wrec.Lease {
				if perr := c.passOn(cctx, key, e.Revision, rec, true); perr != nil {
					c.log.Warn().Err(perr).Str("path", clean).Msg("could not pass on a claim granted after the wait ended")
				}
			}
		}
		err = waitErr(err, clean)
	}()

	expiry := time.NewTimer(time.Hour)
	defer expiry.Stop()
	renew := time.NewTimer(waiterTTL / 3)
	defer renew.Stop()

	for {
		// Granted while we were away? (cheap check first: one read)
		e, err := c.claims.Last(ctx, key)
		if err != nil && !errors.Is(err, kvstore.ErrNotFound) {
			return nil, wrapNATS(err)
		}
		var cur claimRecord
		live := err == nil && e.Live()
		if live {
			if cur, err = decodeClaim(key, e.Value); err != nil {
				return nil, err
			}
			if cur.Lease == wrec.Lease {
				q.leave(ctx, wkey, &wrev)
				return c.hold(key, e.Revision, cur, e.Created), nil
			}
		}
		if !live || cur.Agent == c.opts.agent {
			cl, err := c.tryAcquire(ctx, key, clean, o)
			if err == nil {
				q.leave(ctx, wkey, &wrev)
				return cl, nil
			}
			if !errors.Is(err, ErrClaimed) {
				return nil, err
			}
			continue // re-read: the holder is new
		}
		if wrev == 0 {
			if wrev, err = c.waiters.Put(ctx, wkey, wrec.encode(), waiterTTL); err != nil {
				return nil, wrapNATS(err)
			}
			continue // re-read after enqueueing, so a release in between is seen
		}
		if !cur.Waiters {
			// Flag the claim so its holder looks for us when it releases.
			// The write is revision-checked: if the holder released first,
			// it fails and the loop sees the free key.
			flagged := cur
			flagged.Waiters = true
			left := time.Until(e.Created.Add(cur.ttl()))
			if _, err := c.claims.Update(ctx, key, flagged.encode(), e.Revision, max(roundUpSecond(left), time.Second)); err != nil && !errors.Is(err, kvstore.ErrRevisionMismatch) {
				return nil, wrapNATS(err)
			}
			continue
		}
		// Queued behind a flagged holder: wait for our key to be deleted
		// (granted, or nudged after a release that found no one), the
		// holder's lease to run out, or the end.
		expiry.Reset(max(time.Until(e.Created.Add(cur.ttl())), 0) + 50*time.Millisecond)
	waiting:
		for {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-c.ctx.Done():
				return nil, ErrClosed
			case <-wake:
				wrev = 0 // the releaser deleted our key
				break waiting
			case <-renew.C:
				renew.Reset(waiterTTL / 3)
				if wrev != 0 {
					nrev, err := c.waiters.Update(ctx, wkey, wrec.encode(), wrev, waiterTTL)
					if err == nil {
						wrev = nrev
					} else if errors.Is(err, kvstore.ErrRevisionMismatch) {
						wrev = 0
						break waiting
					}
				}
			case <-expiry.C:
				if err := q.awaitExpiry(ctx, key, e.Revision, wake); err != nil {
					return nil, err
				}
				break waiting
			}
		}
	}
}

// awaitExpiry runs when the holder's lease should have run out: if the
// claim is still at the revision we saw, the server has not written its
// expiry marker yet (it checks about every 250ms); watch the key for it.
func (q *waitQueue) awaitExpiry(ctx context.Context, key string, rev uint64, wake chan struct{}) error {
	c := q.c
	w, err := c.claims.Watch(ctx, []string{key})
	if err != nil {
		return wrapNATS(err)
	}
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-c.ctx.Done():
			return ErrClosed
		case <-wake:
			return nil
		case ev, ok := <-w.C():
			if !ok {
				return nil
			}
			e := kvstore.Convert(ev)
			if e.InitialDone {
				continue
			}
			if e.Revision != rev {
				return nil
			}
		}
	}
}

// leave removes our waiter key after we got the claim (if the releaser did
// not already delete it).
func (q *waitQueue) leave(ctx context.Context, wkey string, wrev *uint64) {
	if *wrev == 0 {
		return
	}
	if _, err := q.c.waiters.Delete(ctx, wkey, *wrev); err != nil && !errors.Is(err, kvstore.ErrRevisionMismatch) {
		q.c.log.Debug().Err(err).Str("key", wkey).Msg("could not remove waiter key; it expires by itself")
	}
	*wrev = 0
}

// waiterRef is a waiter found in the queue.
type waiterRef struct {
	key string
	rev uint64
	rec waiterRecord
}

// nextWaiter finds the oldest live waiter of a claim key.
func (c *Client) nextWaiter(ctx context.Context, key string) (waiterRef, bool, error) {
	filter := subjects.WaiterFilter(key)
	from := uint64(1)
	for range 1024 {
		e, err := c.waiters.Next(ctx, filter, from)
		if errors.Is(err, kvstore.ErrNotFound) {
			return waiterRef{}, false, nil
		}
		if err != nil {
			return waiterRef{}, false, wrapNATS(err)
		}
		from = e.Revision + 1
		if !e.Live() {
			continue
		}
		var w waiterRecord
		if err := json.Unmarshal(e.Value, &w); err != nil || w.Lease == "" || w.Agent == "" || w.TTLSeconds <= 0 {
			c.log.Warn().Str("key", e.Key).Msg("skipping unreadable waiter entry")
			continue
		}
		return waiterRef{key: e.Key, rev: e.Revision, rec: w}, true, nil
	}
	return waiterRef{}, false, nil
}

// notifyWaiter deletes the waiter's key, which wakes it. gone reports that
// the waiter left the queue first (it will not take the claim).
func (c *Client) notifyWaiter(ctx context.Context, w waiterRef) (gone bool, err error) {
	rev := w.rev
	for range 8 {
		_, err := c.waiters.Delete(ctx, w.key, rev)
		if err == nil {
			return false, nil
		}
		if !errors.Is(err, kvstore.ErrRevisionMismatch) {
			return false, wrapNATS(err)
		}
		e, err := c.waiters.Last(ctx, w.key)
		if errors.Is(err, kvstore.ErrNotFound) {
			return true, nil
		}
		if err != nil {
			return false, wrapNATS(err)
		}
		var cur waiterRecord
		if !e.Live() || json.Unmarshal(e.Value, &cur) != nil || cur.Lease != w.rec.Lease {
			return true, nil
		}
		rev = e.Revision // it renewed its key meanwhile
	}
	return false, fmt.Errorf("coord: waking waiter %s: too much contention", w.key)
}

// passOn ends a holding (rev, rec): the claim goes to the oldest waiter if
// the holding was flagged, else it is deleted. behalf is set when the holding
// is not ours (a waiter that left after being granted): then someone else
// having dealt with it is success.
func (c *Client) passOn(ctx context.Context, key string, rev uint64, rec claimRecord, behalf ...bool) error {
	onBehalf := len(behalf) > 0 && behalf[0]
	lease := rec.Lease
	for range 32 {
		if rec.Waiters {
			w, ok, err := c.nextWaiter(ctx, key)
			if err != nil {
				return err
			}
			if ok {
				next := claimRecord{
					Path:       rec.Path,
					Agent:      w.rec.Agent,
					Reason:     w.rec.Reason,
					ClaimedAt:  time.Now().UTC(),
					TTLSeconds: w.rec.TTLSeconds,
					Client:     w.rec.Client,
					Lease:      w.rec.Lease,
					Waiters:    true,
				}
				nrev, err := c.claims.Update(ctx, key, next.encode(), rev, next.ttl())
				if errors.Is(err, kvstore.ErrRevisionMismatch) {
					if rev, rec, err = c.reread(ctx, key, lease, onBehalf); err != nil || rev == 0 {
						return err
					}
					continue
				}
				if err != nil {
					return wrapNATS(err)
				}
				gone, err := c.notifyWaiter(ctx, w)
				if err != nil {
					return err
				}
				if !gone {
					return nil
				}
				// The waiter left before it could take the claim: pass it on
				// in its name.
				rev, rec, lease, onBehalf = nrev, next, next.Lease, true
				continue
			}
		}
		mrev, err := c.claims.Delete(ctx, key, rev)
		if errors.Is(err, kvstore.ErrRevisionMismatch) {
			if rev, rec, err = c.reread(ctx, key, lease, onBehalf); err != nil || rev == 0 {
				return err
			}
			continue
		}
		if err != nil {
			return wrapNATS(err)
		}
		c.setHint(key, mrev)
		if rec.Waiters {
			// A waiter may have queued after our look and before the delete;
			// nudge it, or it would wait for a grant that never comes.
			if w, ok, err := c.nextWaiter(ctx, key); err == nil && ok {
				if _, err := c.notifyWaiter(ctx, w); err != nil {
					c.log.Debug().Err(err).Msg("could not nudge waiter")
				}
			}
		}
		return nil
	}
	return fmt.Errorf("coord: release %s: too much contention, gave up", rec.Path)
}

// reread loads a claim whose revision moved under a release. rev 0 with a
// nil error means there is nothing left to release.
func (c *Client) reread(ctx context.Context, key, lease string, onBehalf bool) (uint64, claimRecord, error) {
	e, err := c.claims.Get(ctx, key)
	if errors.Is(err, kvstore.ErrNotFound) {
		return 0, claimRecord{}, nil
	}
	if err != nil {
		return 0, claimRecord{}, wrapNATS(err)
	}
	rec, err := decodeClaim(key, e.Value)
	if err != nil {
		return 0, claimRecord{}, err
	}
	if rec.Lease != lease {
		if onBehalf {
			return 0, claimRecord{}, nil
		}
		return 0, claimRecord{}, fmt.Errorf("%w: %s is held by %s now", ErrNotOwner, rec.Path, rec.Agent)
	}
	return e.Revision, rec, nil
}
