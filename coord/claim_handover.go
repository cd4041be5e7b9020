package coord

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/cogos-dev/coord/kvstore"
	"github.com/cogos-dev/coord/subjects"
)

// prefetchSuccessor looks up the next waiter in the background while the
// claim is held, and then the waiter after it, for the grant note: so that
// a release under contention costs one round trip less, and the next
// holder's release too (it starts from the note). Only a guess: passOn
// copes with a successor that has left.
func (l *lease) prefetchSuccessor() {
	p := make(chan waiterRef, 1)
	a := make(chan *nextRef, 1)
	if !l.c.goTracked(func(ctx context.Context) {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		w, ok, err := l.c.nextWaiter(ctx, l.key)
		if err != nil || !ok {
			p <- waiterRef{}
			a <- nil
			return
		}
		p <- w
		a <- l.c.lookAfter(ctx, l.key, w)
	}) {
		p <- waiterRef{}
		a <- nil
	}
	l.mu.Lock()
	l.successor = p
	l.after = a
	l.mu.Unlock()
}

// setSuccessor records a successor the releaser already found, and the
// look-up of the waiter after it, started when the grant arrived: the
// release then writes the claim over and wakes the successor, its grant
// note naming who comes next, without a look-up on the way.
func (l *lease) setSuccessor(w waiterRef, a chan *nextRef) {
	p := make(chan waiterRef, 1)
	p <- w
	l.mu.Lock()
	l.successor = p
	l.after = a
	l.mu.Unlock()
}

// lookAhead runs a queue look-up in the background (bounded, tracked by
// the client) and delivers its answer, or none when the client is closing,
// on the channel it returns.
func lookAhead[T any](c *Client, none T, look func(context.Context) T) chan T {
	p := make(chan T, 1)
	if !c.goTracked(func(ctx context.Context) {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		p <- look(ctx)
	}) {
		p <- none
	}
	return p
}

// lookAfter finds the waiter queued after w, as a grant note carries it
// (nil for none, or when the look-up failed: the note is only a hint).
func (c *Client) lookAfter(ctx context.Context, key string, w waiterRef) *nextRef {
	n, ok, err := c.nextWaiterFrom(ctx, key, w.rev+1)
	if err != nil || !ok {
		return nil
	}
	return &nextRef{Key: n.key, Rev: n.rev, Rec: n.rec}
}

// takeSuccessor returns the prefetched next waiter, once its look-up is
// done, and the look-up of the one after it (nil if none was started).
func (l *lease) takeSuccessor(ctx context.Context) (waiterRef, <-chan *nextRef) {
	l.mu.Lock()
	p, a := l.successor, l.after
	l.successor, l.after = nil, nil
	l.mu.Unlock()
	if p == nil {
		return waiterRef{}, nil
	}
	select {
	case w := <-p:
		return w, a
	case <-ctx.Done():
		return waiterRef{}, nil
	}
}

// wakeup is what a waiter learns from the deletion of its key. A release
// that hands the claim over puts the grant in the delete marker's body, so
// the waiter needs no read to know it holds the claim; a nudge (the claim
// was deleted, try again) has no body.
type wakeup struct {
	// Revision is the claim's revision the grant replaces: the note can
	// arrive before the write that hands the claim over is stored, and a
	// waiter that reads this revision waits for the key to move.
	Revision  uint64    `json:"rev,omitempty"`
	Lease     string    `json:"lease,omitempty"`
	ClaimedAt time.Time `json:"claimed_at,omitempty"`
	// Next is the waiter after this one, as the releaser found it: the new
	// holder's own release then needs no look-up.
	Next *nextRef `json:"next,omitempty"`
	// Taken is set by a waiter removing its own key after it took the
	// claim: not a wake-up, and not a waiter that left.
	Taken bool `json:"taken,omitempty"`
	// recheck: events may have been missed (reconnect); our key may still
	// be in place.
	recheck bool
	// keyRev is the revision of the deletion that woke us: a wait ignores
	// one older than its own key (an earlier wait's, delivered late).
	keyRev uint64
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
		if !e.Live() {
			// Its key is gone. If it went with a "taken" note, the waiter
			// saw our grant on the claim key and holds it: not gone. Else
			// it left (gave up) before it could take the claim.
			var note wakeup
			if json.Unmarshal(e.Value, &note) == nil && note.Taken && note.Lease == w.rec.Lease {
				return false, nil
			}
			return true, nil
		}
		var cur waiterRecord
		if json.Unmarshal(e.Value, &cur) != nil || cur.Lease != w.rec.Lease {
			return true, nil
		}
		rev = e.Revision // it renewed its key meanwhile
	}
	return false, fmt.Errorf("coord: waking waiter %s: too much contention", w.key)
}

// handedFor is how long a claim this client handed to a waiter is assumed
// to be held, for its next Acquire of the same path.
const handedFor = 100 * time.Millisecond

// A wait looks up who queued behind it while it waits, so that once
// granted its release needs no look-up and does not wait for one:
// successorAfter after it queued, and once more successorAgain later if
// nobody had queued behind it yet. In a busy queue the next waiter queues
// about one hand-over (a fraction of a millisecond) after this one; a wait
// granted sooner than successorAfter learns its successor from its grant
// note instead (see granted).
const (
	successorAfter = time.Millisecond
	successorAgain = 4 * time.Millisecond
)

// behind looks up, in the background, who queued behind a wait.
type behind struct {
	c     *Client
	key   string
	timer *time.Timer
	rev   uint64        // the waiter key revision the look-ups are for
	tries int           // look-ups started for rev
	look1 chan *nextRef // the latest look-up
	got   *nextRef      // a waiter found behind rev
}

func newBehind(c *Client, key string) *behind {
	b := &behind{c: c, key: key, timer: time.NewTimer(time.Hour)}
	b.timer.Stop()
	return b
}

// queuedAt starts the clock for a wait queued at key revision rev (0: not
// queued); a new revision (queued again) forgets what was found.
func (b *behind) queuedAt(rev uint64) {
	if rev == b.rev {
		return
	}
	b.rev, b.tries, b.look1, b.got = rev, 0, nil, nil
	b.timer.Stop()
	if rev != 0 && b.c.opts.successorAfter > 0 {
		b.timer.Reset(b.c.opts.successorAfter)
	}
}

// look starts a look-up when the timer fires, unless one found somebody.
func (b *behind) look() {
	if b.rev == 0 || b.found() != nil {
		return
	}
	b.tries++
	rev := b.rev
	b.look1 = lookAhead(b.c, nil, func(ctx context.Context) *nextRef {
		n := b.c.lookAfter(ctx, b.key, waiterRef{rev: rev})
		if h := b.c.testHookBehind; h != nil {
			h(n)
		}
		return n
	})
	if b.tries == 1 {
		b.timer.Reset(successorAgain)
	}
}

// found returns the waiter found behind, if a look-up found one by now.
func (b *behind) found() *nextRef {
	if b.got == nil && b.look1 != nil {
		select {
		case b.got = <-b.look1:
			b.look1 = nil
		default:
		}
	}
	return b.got
}

func (b *behind) stop() { b.timer.Stop() }

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
	// after: the look-up of the waiter after next, started while holding.
	after <-chan *nextRef
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
			hinted := ok
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
				// Who comes after w, for its grant note: looked up while we
				// held the claim when w came with our own grant (else w looks
				// it up while it holds the claim).
				var successor *nextRef
				if o.after != nil && hinted {
					select {
					case successor = <-o.after:
					case <-ctx.Done():
					}
				}
				o.after = nil
				// The claim is written over to w and w is woken in the same
				// breath, without waiting for the first write's ack: the two
				// go to different streams, so the note can be stored (and w
				// woken) first; w then finds the claim at rev and waits for
				// it to move. This takes a round trip off every hand-over.
				pending := c.claims.UpdateAsync(key, next.encode(), rev, next.ttl())
				gone, nerr := c.notifyWaiter(ctx, w, &wakeup{Revision: rev, Lease: next.Lease, ClaimedAt: next.ClaimedAt, Next: successor})
				nrev, err := pending.Wait(ctx)
				if errors.Is(err, kvstore.ErrRevisionMismatch) {
					// The claim moved under us: w was woken for nothing; it
					// reads the claim, sees it is not its, and queues again.
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
				if nerr != nil {
					return nerr
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
