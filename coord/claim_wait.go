package coord

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/cogos-dev/coord/kvstore"
	"github.com/cogos-dev/coord/subjects"
)

// How a blocked Acquire works (see NATS-NOTES.md, "Waiting for a contended
// claim"): the waiter writes its own key in coord-claim-waiters
// (<client>.<claim key>) and sets the Waiters flag on the claim. A holder
// whose claim is flagged does not just delete it on release: it finds the
// oldest waiter (one next-by-subject read, usually done while it held the
// claim), writes the claim over to it (one revision-checked write: the claim
// is never free, so nobody can barge in) and, without waiting for that
// write's ack, deletes the waiter's key, which wakes that waiter alone
// through its client's single watch. The waiter believes the grant only
// once the claim key carries its lease (the note can be stored before the
// write: then it waits for the key to move). A waiter's place in line is the revision of
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
func (c *Client) Acquire(ctx context.Context, path string, opts ...ClaimOption) (cl *Claim, err error) {
	defer func() {
		// A wait cut short by Close fails on a closed connection, or on
		// the client's context: it was the Close.
		if err != nil && c.ctx.Err() != nil && !errors.Is(err, ErrClosed) {
			err = fmt.Errorf("%w: %w", ErrClosed, err)
		}
	}()
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
			if err != nil {
				return nil, waitErr(err, clean)
			}
			return cl, nil
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

// wait is the blocked part of Acquire.
// seen is the claim's revision as the failed try read it (Revision 0: none).
func (q *waitQueue) wait(ctx context.Context, key, clean string, o claimOptions, seen kvstore.Entry) (cl *Claim, err error) {
	c := q.c
	if err := q.ensureWatch(ctx); err != nil {
		return nil, waitErr(err, clean)
	}
	wkey := subjects.WaiterKey(c.id, key)
	wrec := waiterRecord{
		Path:       clean,
		Agent:      c.opts.agent,
		Client:     c.id,
		Lease:      uuid.NewString(),
		Reason:     o.reason,
		TTLSeconds: int64(o.ttl / time.Second),
		Since:      time.Now().UTC(),
	}
	wake := q.register(wkey, wrec.Lease)
	defer q.unregister(wkey)

	var wrev uint64   // revision of our waiter key; 0 while not enqueued
	enqueued := false // an enqueue was sent (it may be stored though it failed)
	// lost: our key went without a grant for our lease (a nudge, a drop, a
	// grant that was not backed). A releaser that hands the claim to our
	// lease and then finds the key so takes us for a waiter that left and
	// passes the claim on in our name: this wait must never take a claim
	// written to that lease, so it queues again under a new one (a grant to
	// the old one reaches the waiter watch as a stray).
	lost := func() {
		wrev = 0
		wrec.Lease = uuid.NewString()
		q.relabel(wkey, wrec.Lease)
	}
	defer func() {
		if err == nil {
			return
		}
		// Gave up (timeout, cancel, close): leave the queue, and if the
		// claim was handed to us meanwhile, pass it on. A grant that comes
		// after this is a stray one (dispatch passes it on).
		q.unregister(wkey)
		cctx, cancel := cleanupContext()
		defer cancel()
		if wrev == 0 && enqueued {
			// An enqueue whose answer we did not get (the deadline came
			// first) may have been stored: a releaser would find it and
			// hand the claim to a wait that is over.
			if k, kerr := c.waiters.Last(cctx, wkey); kerr == nil && k.Live() {
				var w waiterRecord
				if json.Unmarshal(k.Value, &w) == nil && w.Lease == wrec.Lease {
					wrev = k.Revision
				}
			}
		}
		removed := false
		if wrev != 0 {
			_, derr := c.waiters.Delete(cctx, wkey, wrev)
			removed = derr == nil
			if derr != nil && !errors.Is(derr, kvstore.ErrRevisionMismatch) {
				c.log.Warn().Err(derr).Str("path", clean).Msg("could not remove waiter key; it expires by itself")
			}
		}
		// A releaser may have deleted our key with a grant: it counts us as
		// the holder from then on, so the claim must not be left to a lease
		// nobody keeps.
		var from uint64
		if !removed {
			from = q.grantedFrom(cctx, wkey, wrec.Lease)
		}
		if perr := q.passOnGranted(cctx, key, wrec.Lease, from); perr != nil {
			c.log.Warn().Err(perr).Str("path", clean).Msg("could not pass on a claim granted after the wait ended")
		}
		err = waitErr(err, clean)
	}()

	expiry := time.NewTimer(time.Hour)
	defer expiry.Stop()
	q.beginWait()
	defer q.endWait()
	renew := time.NewTimer(waiterTTL / 2)
	defer renew.Stop()
	behind := newBehind(c, key)
	defer behind.stop()

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
				// Written over to us, but we saw no grant note: it is ours
				// only if our key still says we wait (see take).
				ok, err := q.take(ctx, wkey, wrec.Lease, wrev)
				if err != nil {
					return nil, err
				}
				if ok {
					return c.hold(key, e.Revision, cur, e.Created), nil
				}
				lost()
				continue
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
			enqueued = true
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
		behind.queuedAt(wrev)
	waiting:
		for {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-c.ctx.Done():
				return nil, ErrClosed
			case wu := <-wake:
				if wu.keyRev != 0 && wu.keyRev < wrev {
					continue // about an earlier key of ours
				}
				if wu.recheck {
					// Events may have been missed: where does our key stand?
					k, err := c.waiters.Last(ctx, wkey)
					if err != nil && !errors.Is(err, kvstore.ErrNotFound) {
						break waiting // unknown; the loop reads the claim
					}
					if err == nil && k.Live() && k.Revision == wrev {
						break waiting // still queued
					}
					wu = wakeup{}
					if g, ok := grantIn(k, wrec.Lease); err == nil && ok {
						wu = g // a grant we missed
					}
				}
				if wu.Revision == 0 || wu.Lease != wrec.Lease || wu.Taken {
					lost() // nudged or dropped: read the claim, queue again
					break waiting
				}
				wrev = 0 // the releaser deleted our key with our grant
				cl, err := q.granted(ctx, key, clean, wu, wake, behind.found())
				if err != nil {
					return nil, err
				}
				if cl == nil {
					lost()
					break waiting
				}
				return cl, nil
			case <-behind.timer.C:
				behind.look()
			case <-renew.C:
				renew.Reset(waiterTTL / 2)
				if wrev != 0 {
					nrev, err := c.waiters.Update(ctx, wkey, wrec.encode(), wrev, waiterTTL)
					if err == nil {
						wrev = nrev
					} else if errors.Is(err, kvstore.ErrRevisionMismatch) {
						// Deleted under us: the event says how (it may be
						// a grant); have the next look read the key.
						deliver(wake, wakeup{recheck: true})
					}
				}
			case <-expiry.C:
				wu, err := q.awaitMove(ctx, key, e.Revision, wake)
				if err != nil {
					return nil, err
				}
				if wu != nil {
					deliver(wake, *wu) // for the loop to act on
				}
				break waiting
			}
		}
	}
}

// grantedFrom reads our waiter key after the wait ended: if a releaser
// deleted it with a grant for lease, the claim revision the grant replaces,
// else 0.
func (q *waitQueue) grantedFrom(ctx context.Context, wkey, lease string) uint64 {
	k, err := q.c.waiters.Last(ctx, wkey)
	if err != nil {
		return 0
	}
	wu, _ := grantIn(k, lease)
	return wu.Revision
}

// grantIn reads a grant for lease from the latest entry of a waiter key:
// the note a releaser put on its delete (not a "taken" marker).
func grantIn(k kvstore.Entry, lease string) (wakeup, bool) {
	var wu wakeup
	if k.Live() || json.Unmarshal(k.Value, &wu) != nil || wu.Revision == 0 || wu.Lease != lease || wu.Taken {
		return wakeup{}, false
	}
	return wu, true
}

// passOnGranted passes on, in lease's name, a claim granted to a wait of
// this client that is over. from is the claim revision the grant replaced
// (0: no grant seen); the grant's write is sent with its note and can be
// stored after it, so the key is first awaited past from. A claim this
// client holds under lease (the wait took it after all) is left alone.
func (q *waitQueue) passOnGranted(ctx context.Context, key, lease string, from uint64) error {
	c := q.c
	e, err := c.claims.Last(ctx, key)
	if err == nil && from != 0 && e.Revision == from {
		if _, err := q.awaitMove(ctx, key, from, make(chan wakeup)); err != nil {
			return err
		}
		e, err = c.claims.Last(ctx, key)
	}
	if errors.Is(err, kvstore.ErrNotFound) {
		return nil
	}
	if err != nil {
		return wrapNATS(err)
	}
	if !e.Live() {
		return nil
	}
	rec, err := decodeClaim(key, e.Value)
	if err != nil || rec.Lease != lease || c.holdsLease(key, lease) {
		return nil
	}
	return c.passOn(ctx, key, e.Revision, rec, passOptions{behalf: true})
}

// awaitMove watches the claim key until it moves past revision rev, or a
// wake-up arrives (returned). Used when the holder's lease should have run
// out but the server has not written its expiry marker yet (it checks about
// every 250ms), and when a grant note arrived before the write that hands
// us the claim was stored.
func (q *waitQueue) awaitMove(ctx context.Context, key string, rev uint64, wake chan wakeup) (*wakeup, error) {
	c := q.c
	w, err := c.claims.Watch(ctx, []string{key})
	if err != nil {
		return nil, wrapNATS(err)
	}
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-c.ctx.Done():
			return nil, ErrClosed
		case wu := <-wake:
			return &wu, nil
		case ev, ok := <-w.C():
			if !ok {
				return nil, nil
			}
			e := kvstore.Convert(ev)
			if e.InitialDone {
				continue
			}
			if e.Revision != rev {
				return nil, nil
			}
		}
	}
}

// granted acts on a grant note for our lease: the releaser says it wrote
// the claim over to us. Anyone who may write waiter keys could forge such a
// note (with any token), so the claim key itself is read once (a direct get
// on a single-replica bucket): only the record the note describes, carrying
// our lease, makes us the holder, with its revision as token. nil, nil: the
// grant is not backed.
func (q *waitQueue) granted(ctx context.Context, key, clean string, wu wakeup, wake chan wakeup, own *nextRef) (*Claim, error) {
	c := q.c
	// Who comes next, for our own release: the waiter we found queued
	// behind us while we waited, else the one the note names. In the
	// second case, who comes after that one, for our grant note, is looked
	// up alongside the read below, not after it, which takes a round trip
	// off a hand-over when the claim is held briefly.
	var next waiterRef
	var after chan *nextRef
	if own != nil {
		next = waiterRef{key: own.Key, rev: own.Rev, rec: own.Rec}
	} else if wu.Next != nil {
		next = waiterRef{key: wu.Next.Key, rev: wu.Next.Rev, rec: wu.Next.Rec}
		after = lookAhead(c, nil, func(ctx context.Context) *nextRef { return c.lookAfter(ctx, key, next) })
	}
	e, err := c.claims.Last(ctx, key)
	if err == nil && e.Revision == wu.Revision {
		e, err = c.claims.Last(ctx, key)
	}
	for err == nil && e.Revision == wu.Revision {
		// The write that hands us the claim is sent with the note, not
		// before it, and can be stored after it: wait (on a watch) for the
		// key to move. (Our key is deleted: a wake-up meanwhile can only
		// be a recheck, which this read is.)
		if _, err := q.awaitMove(ctx, key, wu.Revision, wake); err != nil {
			return nil, err
		}
		e, err = c.claims.Last(ctx, key)
	}
	if err != nil || !e.Live() {
		return nil, nil
	}
	rec, err := decodeClaim(key, e.Value)
	// The record must be the one the note announced (its ClaimedAt): a
	// releaser with an outdated look-up of us may write our lease too, and
	// it passes that claim on when it finds our key deleted by this grant.
	if err != nil || rec.Lease != wu.Lease || !rec.ClaimedAt.Equal(wu.ClaimedAt) {
		c.log.Warn().Str("path", clean).Msg("grant note not backed by the claim; still waiting")
		return nil, nil
	}
	cl := c.hold(key, e.Revision, rec, minTime(wu.ClaimedAt, time.Now()))
	if next.key != "" {
		cl.lease.setSuccessor(next, after)
	} else {
		cl.lease.prefetchSuccessor()
	}
	return cl, nil
}

// take marks our waiter key taken by lease before we hold a claim we found
// written over to that lease without a grant note (the note went missing in
// a reconnect, or is on its way): revision-checked, so a releaser that
// hands us the claim and finds our key changed learns we hold it. false:
// a releaser deleted the key without our grant first; it takes us for gone
// and passes the claim on, so we must not hold it.
func (q *waitQueue) take(ctx context.Context, wkey, lease string, wrev uint64) (bool, error) {
	if wrev == 0 {
		return false, nil // our lease was never queued: not a grant to us
	}
	note, _ := json.Marshal(wakeup{Lease: lease, Taken: true})
	_, err := q.c.waiters.DeleteWithNote(ctx, wkey, wrev, note)
	if err == nil {
		return true, nil
	}
	if !errors.Is(err, kvstore.ErrRevisionMismatch) {
		return false, wrapNATS(err)
	}
	k, err := q.c.waiters.Last(ctx, wkey)
	if errors.Is(err, kvstore.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, wrapNATS(err)
	}
	// Deleted with our grant: the releaser counts us as the holder.
	_, ok := grantIn(k, lease)
	return ok, nil
}

// leave removes our waiter key after we took the claim by a try of our own
// (if no releaser deleted it already). The note marks it taken but names no
// lease: a releaser that handed the claim to our waiting lease and finds
// the key so takes that lease for gone and passes its claim on.
func (q *waitQueue) leave(ctx context.Context, wkey string, wrev *uint64) {
	if *wrev == 0 {
		return
	}
	note, _ := json.Marshal(wakeup{Taken: true})
	if _, err := q.c.waiters.DeleteWithNote(ctx, wkey, *wrev, note); err != nil && !errors.Is(err, kvstore.ErrRevisionMismatch) {
		q.c.log.Debug().Err(err).Str("key", wkey).Msg("could not remove waiter key; it expires by itself")
	}
	*wrev = 0
}
