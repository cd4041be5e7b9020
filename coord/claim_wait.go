package coord

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"

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
// its client's single watch. A waiter's place in line is the revision of
// its key, so the key is not rewritten while it waits; liveness comes from
// its client's session key (<client>, renewed every sessionTTL/3 while the
// client has waits), and a releaser that finds a waiter whose session has
// expired deletes it and looks further: a crashed waiter leaves the queue
// by itself. A holder that crashes is noticed by the waiters' timers at the
// lease's expiry.

const (
	// sessionTTL is the lease of a client's session key.
	sessionTTL = 15 * time.Second
	// waiterTTL only collects waiter keys nobody removed; a wait renews its
	// key at half of it (and then re-queues behind later arrivals).
	waiterTTL = time.Hour
)

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
	// A client that has just handed this claim to a waiter knows it is
	// held: it queues at once (the wait reads the key after queueing, so a
	// release in between is not missed). Only Acquire may skip the read;
	// TryAcquire must answer from the key as it is.
	seen, handed := c.handedOver(key)
	if !handed {
		cl, err := c.tryAcquire(ctx, key, clean, o)
		if !errors.Is(err, ErrClaimed) {
			return cl, err
		}
		if ce := (*ClaimedError)(nil); errors.As(err, &ce) {
			seen = ce.entry // the holder as the try read it
		}
	}
	unlock, err := c.queue.lockKey(ctx, key)
	if err != nil {
		return nil, waitErr(err, clean)
	}
	defer unlock()
	return c.queue.wait(ctx, key, clean, o, seen)
}

func waitErr(err error, path string) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: waiting for %s: %w", ErrTimeout, path, err)
	}
	return err
}

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
	waits  map[string]chan wakeup   // waiter key -> wake-up
	locks  map[string]chan struct{} // claim key -> local turn (one wait per key per client)
	closed bool
}

func newWaitQueue(c *Client) *waitQueue {
	return &waitQueue{c: c, waits: make(map[string]chan wakeup), locks: make(map[string]chan struct{})}
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
	w, cancel, err := q.startWatch(ctx)
	if err != nil {
		return wrapNATS(err)
	}
	q.w = w
	// Listen for reconnects before any wait relies on the watch.
	reconnected := q.c.nc.StatusChanged(nats.CONNECTED)
	if !q.c.goTracked(func(cctx context.Context) {
		defer cancel()
		q.dispatch(cctx, w, reconnected)
	}) {
		q.c.nc.RemoveStatusListener(reconnected)
		cancel()
		_ = w.Stop()
		q.w = nil
		return ErrClosed
	}
	return nil
}

// watchAttempt bounds one try at creating the watch. On a cluster that has
// just lost a node, the server can place the watch's consumer on that node
// and never answer the create; a new try is placed on a live one.
const watchAttempt = 3 * time.Second

// startWatch creates the watch on the client's waiter keys, retrying
// unanswered creates (and unavailability) until ctx ends. The watch lives until the client
// closes or cancel is called: nats.go unsubscribes a watch when the context
// it was created with ends, so it must not be the caller's (an Acquire's
// deadline would silently end every other wait's wake-ups).
func (q *waitQueue) startWatch(ctx context.Context) (w *kvstore.Watcher, cancel context.CancelFunc, err error) {
	retry := time.NewTimer(0)
	defer retry.Stop()
	for {
		wctx, wcancel := context.WithCancel(q.c.ctx)
		attempt := time.AfterFunc(watchAttempt, wcancel)
		detach := context.AfterFunc(ctx, wcancel)
		w, err = q.c.waiters.Watch(wctx, []string{subjects.WaiterClientFilter(q.c.id)}, kvstore.UpdatesOnly())
		timedOut := !attempt.Stop()
		callerDone := !detach()
		if err == nil && !timedOut && !callerDone {
			return w, wcancel, nil
		}
		wcancel()
		if err == nil {
			_ = w.Stop()
			err = context.DeadlineExceeded
		}
		if ctx.Err() != nil || !(timedOut || errors.Is(err, kvstore.ErrUnavailable)) {
			return nil, nil, err // the caller's end, or a lasting error
		}
		q.c.log.Debug().Err(err).Msg("creating the waiter watch failed; retrying")
		retry.Reset(100 * time.Millisecond)
		select {
		case <-ctx.Done():
			return nil, nil, err
		case <-retry.C:
		}
	}
}

// dispatch wakes the wait whose key was deleted or expired. It drains the
// watch promptly so the server never stalls on it.
func (q *waitQueue) dispatch(ctx context.Context, w *kvstore.Watcher, reconnected chan nats.Status) {
	// nats.go's watcher notices a restarted server only after its
	// heartbeats go missing (about 20 s); watch again at once on reconnect
	// and have every wait re-read where it stands.
	defer q.c.nc.RemoveStatusListener(reconnected)
	var cancels []context.CancelFunc // of the watches made after reconnects
	defer func() {
		for _, cancel := range cancels {
			cancel()
		}
	}()
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
			// Bounded: right after a node is lost the create can go
			// unanswered, and this goroutine delivers every wake-up.
			rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
			nw, ncancel, err := q.startWatch(rctx)
			rcancel()
			if err == nil {
				cancels = append(cancels, ncancel)
			}
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
		}
		q.mu.Lock()
		ch := q.waits[ev.Key]
		q.mu.Unlock()
		if ch != nil {
			deliver(ch, wu)
		}
	}
}

// deliver hands a wake-up to a wait without blocking. A grant must never be
// lost: it replaces a pending plain wake-up.
func deliver(ch chan wakeup, wu wakeup) {
	select {
	case ch <- wu:
		return
	default:
	}
	if wu.Revision == 0 {
		return // something is pending already; one look is enough
	}
	select {
	case <-ch:
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
	for _, ch := range q.waits {
		deliver(ch, wu)
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

func (q *waitQueue) register(wkey string) chan wakeup {
	ch := make(chan wakeup, 1)
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
// seen is the claim's revision as the failed try read it (Revision 0: none).
func (q *waitQueue) wait(ctx context.Context, key, clean string, o claimOptions, seen kvstore.Entry) (cl *Claim, err error) {
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
				if perr := c.passOn(cctx, key, e.Revision, rec, passOptions{behalf: true}); perr != nil {
					c.log.Warn().Err(perr).Str("path", clean).Msg("could not pass on a claim granted after the wait ended")
				}
			}
		}
		err = waitErr(err, clean)
	}()

	expiry := time.NewTimer(time.Hour)
	defer expiry.Stop()
	q.beginWait()
	defer q.endWait()
	renew := time.NewTimer(waiterTTL / 2)
	defer renew.Stop()

	for {
		// Where does the claim stand? (Granted to us while we were away?)
		e := seen
		seen = kvstore.Entry{}
		err := error(nil)
		if e.Revision == 0 {
			e, err = c.claims.Last(ctx, key)
		}
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
			if err := q.ensureSession(ctx); err != nil {
				return nil, err
			}
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
			flagged.Token = cur.token(e.Revision)
			left := max(roundUpSecond(time.Until(e.Created.Add(cur.ttl()))), time.Second)
			rev, err := c.claims.Update(ctx, key, flagged.encode(), e.Revision, left)
			if err != nil && !errors.Is(err, kvstore.ErrRevisionMismatch) {
				return nil, wrapNATS(err)
			}
			if err == nil {
				// We know where it stands now: no need to read it again.
				// (Created stays the holder's, so expiry is not pushed out.)
				seen = kvstore.Entry{Key: key, Value: flagged.encode(), Revision: rev, Created: e.Created}
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
			case wu := <-wake:
				if wu.recheck {
					if k, err := c.waiters.Last(ctx, wkey); err != nil || !k.Live() || k.Revision != wrev {
						wrev = 0
					}
					break waiting
				}
				wrev = 0 // the releaser deleted our key
				if wu.Revision != 0 && wu.Lease == wrec.Lease {
					// The note on the delete says the claim was written
					// over to our lease. Anyone who may write waiter keys
					// could forge such a note (with any token), so the
					// claim key itself is read once (a direct get on a
					// single-replica bucket): only a record carrying our
					// lease makes us the holder, with its revision as token.
					e, err := c.claims.Last(ctx, key)
					if err != nil || !e.Live() {
						break waiting
					}
					rec, err := decodeClaim(key, e.Value)
					if err != nil || rec.Lease != wrec.Lease {
						c.log.Warn().Str("path", clean).Msg("grant note not backed by the claim; still waiting")
						break waiting
					}
					cl := c.hold(key, e.Revision, rec, minTime(wu.ClaimedAt, time.Now()))
					if wu.Next != nil {
						cl.lease.setSuccessor(waiterRef{key: wu.Next.Key, rev: wu.Next.Rev, rec: wu.Next.Rec})
					} else {
						cl.lease.prefetchSuccessor()
					}
					return cl, nil
				}
				break waiting
			case <-renew.C:
				renew.Reset(waiterTTL / 2)
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
func (q *waitQueue) awaitExpiry(ctx context.Context, key string, rev uint64, wake chan wakeup) error {
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
		case wu := <-wake:
			// Put it back for the main loop to act on.
			select {
			case wake <- wu:
			default:
			}
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

// prefetchSuccessor looks up the next waiter in the background while the
// claim is held, so that a release under contention costs one round trip
// less. Only a guess: passOn copes with a successor that has left.
func (l *lease) prefetchSuccessor() {
	p := make(chan waiterRef, 1)
	l.mu.Lock()
	l.successor = p
	l.mu.Unlock()
	if !l.c.goTracked(func(ctx context.Context) {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		w, _, err := l.c.nextWaiter(ctx, l.key)
		if err != nil {
			w = waiterRef{}
		}
		p <- w
	}) {
		p <- waiterRef{}
	}
}

// setSuccessor records a successor the releaser already found.
func (l *lease) setSuccessor(w waiterRef) {
	p := make(chan waiterRef, 1)
	p <- w
	l.mu.Lock()
	l.successor = p
	l.mu.Unlock()
}

// takeSuccessor returns the prefetched next waiter, if the lookup is done.
func (l *lease) takeSuccessor(ctx context.Context) waiterRef {
	l.mu.Lock()
	p := l.successor
	l.successor = nil
	l.mu.Unlock()
	if p == nil {
		return waiterRef{}
	}
	select {
	case w := <-p:
		return w
	case <-ctx.Done():
		return waiterRef{}
	}
}

// wakeup is what a waiter learns from the deletion of its key. A release
// that hands the claim over puts the grant in the delete marker's body, so
// the waiter needs no read to know it holds the claim; a nudge (the claim
// was deleted, try again) has no body.
type wakeup struct {
	Revision  uint64    `json:"rev,omitempty"`
	Lease     string    `json:"lease,omitempty"`
	ClaimedAt time.Time `json:"claimed_at,omitempty"`
	// Next is the waiter after this one, as the releaser found it: the new
	// holder's own release then needs no look-up.
	Next *nextRef `json:"next,omitempty"`
	// recheck: events may have been missed (reconnect); our key may still
	// be in place.
	recheck bool
}

// nextRef is a waiterRef as carried in a grant note.
type nextRef struct {
	Key string       `json:"key"`
	Rev uint64       `json:"rev"`
	Rec waiterRecord `json:"rec"`
}

// waiterRef is a waiter found in the queue.
type waiterRef struct {
	key string
	rev uint64
	rec waiterRecord
}

// nextWaiter finds the oldest live waiter of a claim key.
func (c *Client) nextWaiter(ctx context.Context, key string) (waiterRef, bool, error) {
	return c.nextWaiterFrom(ctx, key, 1)
}

// nextWaiterFrom finds the oldest live waiter of a claim key whose key
// revision is at least from.
func (c *Client) nextWaiterFrom(ctx context.Context, key string, from uint64) (waiterRef, bool, error) {
	filter := subjects.WaiterFilter(key)
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
		if err := json.Unmarshal(e.Value, &w); err != nil || w.Lease == "" || w.Agent == "" || w.Client == "" || w.TTLSeconds <= 0 {
			c.log.Warn().Str("key", e.Key).Msg("skipping unreadable waiter entry")
			continue
		}
		if c.queue.sessionSeen(w.Client) {
			return waiterRef{key: e.Key, rev: e.Revision, rec: w}, true, nil
		}
		if _, err := c.waiters.Get(ctx, subjects.SessionKey(w.Client)); errors.Is(err, kvstore.ErrNotFound) {
			// Its client is gone (crashed, partitioned): drop it from the
			// line rather than hand it a claim it would never use.
			if _, err := c.waiters.Delete(ctx, e.Key, e.Revision); err != nil && !errors.Is(err, kvstore.ErrRevisionMismatch) {
				return waiterRef{}, false, wrapNATS(err)
			}
			c.log.Info().Str("key", e.Key).Str("agent", w.Agent).Msg("dropped waiter whose client session expired")
			continue
		} else if err != nil {
			return waiterRef{}, false, wrapNATS(err)
		}
		c.queue.noteSession(w.Client)
		return waiterRef{key: e.Key, rev: e.Revision, rec: w}, true, nil
	}
	return waiterRef{}, false, nil
}

// notifyWaiter deletes the waiter's key, which wakes it. gone reports that
// the waiter left the queue first (it will not take the claim).
func (c *Client) notifyWaiter(ctx context.Context, w waiterRef, grant *wakeup) (gone bool, err error) {
	var note []byte
	if grant != nil {
		note, _ = json.Marshal(grant)
	}
	rev := w.rev
	for range 8 {
		_, err := c.waiters.DeleteWithNote(ctx, w.key, rev, note)
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

// handedFor is how long a claim this client handed to a waiter is assumed
// to be held, for its next Acquire of the same path.
const handedFor = 100 * time.Millisecond

func (c *Client) noteHandedOver(key string, e kvstore.Entry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.handed == nil || len(c.handed) >= maxHints {
		c.handed = make(map[string]kvstore.Entry)
	}
	c.handed[key] = e
}

// handedOver returns the claim as this client handed it over, if that was
// within handedFor, and forgets it (it is good for one Acquire).
func (c *Client) handedOver(key string) (kvstore.Entry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.handed[key]
	if !ok {
		return kvstore.Entry{}, false
	}
	delete(c.handed, key)
	return e, time.Since(e.Created) < handedFor
}

// passOptions adjust passOn.
type passOptions struct {
	// behalf: the holding is not ours (a waiter left after being granted).
	behalf bool
	// next: the waiter found ahead of time (prefetched while holding); it
	// may have left since, which passOn handles like any departed waiter.
	next waiterRef
}

// passOn ends a holding (rev, rec): the claim goes to the oldest waiter if
// the holding was flagged, else it is deleted. behalf is set when the holding
// is not ours (a waiter that left after being granted): then someone else
// having dealt with it is success.
func (c *Client) passOn(ctx context.Context, key string, rev uint64, rec claimRecord, o passOptions) error {
	onBehalf := o.behalf
	lease := rec.Lease
	for range 32 {
		if rec.Waiters {
			w, ok, err := o.next, o.next.key != "", error(nil)
			o.next = waiterRef{} // a guess is good once; after that, look
			if !ok {
				w, ok, err = c.nextWaiter(ctx, key)
			}
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
				// Look up the waiter after w while the claim is written over,
				// and hand it to w with the grant: w's own release then
				// starts with no look-up. (Only a hint: w copes if it left.)
				after := make(chan *nextRef, 1)
				go func() {
					n, ok, err := c.nextWaiterFrom(ctx, key, w.rev+1)
					if err != nil || !ok {
						after <- nil
						return
					}
					after <- &nextRef{Key: n.key, Rev: n.rev, Rec: n.rec}
				}()
				nrev, err := c.claims.Update(ctx, key, next.encode(), rev, next.ttl())
				successor := <-after
				if errors.Is(err, kvstore.ErrRevisionMismatch) {
					if rev, rec, err = c.reread(ctx, key, lease, onBehalf); err != nil || rev == 0 {
						return err
					}
					continue
				}
				if err != nil {
					return wrapNATS(err)
				}
				c.markHeld(key) // our next try starts with a read
				c.noteHandedOver(key, kvstore.Entry{Key: key, Value: next.encode(), Revision: nrev, Created: time.Now()})
				gone, err := c.notifyWaiter(ctx, w, &wakeup{Revision: nrev, Lease: next.Lease, ClaimedAt: next.ClaimedAt, Next: successor})
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
				if _, err := c.notifyWaiter(ctx, w, nil); err != nil {
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
