package coord

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cogos-dev/coord/subjects"
	"github.com/cogos-dev/coord/testenv"
)

// queuedBob has alice hold src/x.go and bob wait for it; it returns what a
// third party with KV access sees: bob's waiter key and record, the claim
// key, and raw JetStream, plus the channel bob's Acquire reports on.
type queuedBob struct {
	srv      *testenv.Server
	alice    *Client
	held     *Claim
	js       jetstream.JetStream
	claims   jetstream.KeyValue
	claimKey string
	wkey     string
	w        waiterRecord
	got      chan *Claim
}

func queueBob(t *testing.T, ctx context.Context) *queuedBob {
	t.Helper()
	srv := testenv.Start(t)
	q := &queuedBob{srv: srv, alice: newClient(t, srv, "alice"), got: make(chan *Claim, 1)}
	bob := newClient(t, srv, "bob")
	var err error
	if q.held, err = q.alice.TryAcquire(ctx, "src/x.go"); err != nil {
		t.Fatal(err)
	}
	go func() {
		cl, err := bob.Acquire(ctx, "src/x.go")
		if err != nil {
			t.Errorf("bob Acquire: %v", err)
		}
		q.got <- cl
	}()
	if q.js, err = jetstream.New(srv.Connect(t)); err != nil {
		t.Fatal(err)
	}
	waiters, err := q.js.KeyValue(ctx, subjects.WaitersBucket)
	if err != nil {
		t.Fatal(err)
	}
	if q.claims, err = q.js.KeyValue(ctx, subjects.ClaimsBucket); err != nil {
		t.Fatal(err)
	}
	q.claimKey, _, _ = subjects.ClaimKey("test", "src/x.go")
	q.wkey = subjects.WaiterKey(bob.ID(), q.claimKey)
	// Queued means: bob's key is written and the claim carries the flag.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		e, err := waiters.Get(ctx, q.wkey)
		if err == nil {
			if err := json.Unmarshal(e.Value(), &q.w); err != nil {
				t.Fatal(err)
			}
			if c, err := q.claims.Get(ctx, q.claimKey); err == nil {
				if rec, err := decodeClaim(q.claimKey, c.Value()); err == nil && rec.Waiters {
					return q
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("bob never queued: %v", err)
		}
	}
}

// note writes a grant note on bob's waiter key, as a releaser does: the
// claim's revision it replaces and the grant's ClaimedAt.
func (q *queuedBob) note(t *testing.T, ctx context.Context, rev uint64, at time.Time) {
	t.Helper()
	note, _ := json.Marshal(wakeup{Revision: rev, Lease: q.w.Lease, ClaimedAt: at})
	m := nats.NewMsg("$KV." + subjects.WaitersBucket + "." + q.wkey)
	m.Header.Set("KV-Operation", "DEL")
	m.Data = note
	if _, err := q.js.PublishMsg(ctx, m); err != nil {
		t.Fatal(err)
	}
}

func (q *queuedBob) claimRevision(t *testing.T, ctx context.Context) uint64 {
	t.Helper()
	e, err := q.claims.Get(ctx, q.claimKey)
	if err != nil {
		t.Fatal(err)
	}
	return e.Revision()
}

// A grant note forged by a third party (anyone who may write waiter keys)
// must not make a waiter believe it holds a claim: the waiter checks the
// claim key itself, and its token is the real revision. Neither a note
// naming a revision that does not exist nor one naming the claim's current
// revision (which a waiter takes for a hand-over still on its way) does.
func TestForgedGrantNoteIsNotAGrant(t *testing.T) {
	for _, tc := range []struct {
		name string
		rev  func(q *queuedBob, t *testing.T, ctx context.Context) uint64
	}{
		{"made-up revision", func(*queuedBob, *testing.T, context.Context) uint64 { return 999999 }},
		{"current revision", func(q *queuedBob, t *testing.T, ctx context.Context) uint64 { return q.claimRevision(t, ctx) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testCtx(t, 30*time.Second)
			q := queueBob(t, ctx)
			q.note(t, ctx, tc.rev(q, t, ctx), time.Now().UTC())
			select {
			case cl := <-q.got:
				t.Fatalf("a forged note made bob the holder (token %d) while alice holds the claim", cl.Token)
			case <-time.After(time.Second):
			}
			if err := q.held.Release(ctx); err != nil {
				t.Fatal(err)
			}
			select {
			case cl := <-q.got:
				if cl.Token == 999999 || cl.Token <= q.held.Token {
					t.Fatalf("bob's token %d: want the claim's real revision, above alice's %d", cl.Token, q.held.Token)
				}
			case <-ctx.Done():
				t.Fatal("bob did not get the claim after alice released it")
			}
		})
	}
}

// A releaser sends the write that hands the claim over and the grant note
// together, and the note can be stored first: the waiter must wait for the
// write (not give up its grant, not take the claim before it is its own).
func TestGrantNoteBeforeTheClaimWrite(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	q := queueBob(t, ctx)
	rev := q.claimRevision(t, ctx)
	at := time.Now().UTC()
	q.note(t, ctx, rev, at)
	select {
	case cl := <-q.got:
		t.Fatalf("bob took the claim (token %d) before it was written over to him", cl.Token)
	case <-time.After(300 * time.Millisecond):
	}
	granted := claimRecord{Path: "src/x.go", Agent: q.w.Agent, Reason: q.w.Reason, ClaimedAt: at,
		TTLSeconds: q.w.TTLSeconds, Client: q.w.Client, Lease: q.w.Lease}
	nrev, err := q.claims.Update(ctx, q.claimKey, granted.encode(), rev)
	if err != nil {
		t.Fatalf("handing the claim over: %v", err)
	}
	select {
	case cl := <-q.got:
		if cl.Token != nrev || !cl.Held() {
			t.Fatalf("bob's claim: token %d held %v; want token %d", cl.Token, cl.Held(), nrev)
		}
	case <-ctx.Done():
		t.Fatal("bob never took the claim handed to him")
	}
}

// A grant to a wait of this client that is over (its enqueue was stored
// after it gave up, so a releaser found it) names a lease nobody keeps:
// the client that gets the note passes the claim on instead of leaving it
// held until its TTL runs out.
func TestStrayGrantIsPassedOn(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	q := queueBob(t, ctx)
	if err := q.held.Release(ctx); err != nil {
		t.Fatal(err)
	}
	bobs := <-q.got // bob's wait is over: he holds the claim
	if err := bobs.Release(ctx); err != nil {
		t.Fatal(err)
	}
	// A releaser (alice) hands the claim to a lease of bob's that no wait
	// has: the claim written over, then the grant note on bob's key.
	if _, err := q.alice.TryAcquire(ctx, "src/x.go"); err != nil {
		t.Fatal(err)
	}
	rev := q.claimRevision(t, ctx)
	at := time.Now().UTC()
	stray := claimRecord{Path: "src/x.go", Agent: q.w.Agent, ClaimedAt: at, TTLSeconds: 60,
		Client: q.w.Client, Lease: "stray-lease", Token: rev}
	if _, err := q.claims.Update(ctx, q.claimKey, stray.encode(), rev); err != nil {
		t.Fatal(err)
	}
	note, _ := json.Marshal(wakeup{Revision: rev, Lease: "stray-lease", ClaimedAt: at})
	m := nats.NewMsg("$KV." + subjects.WaitersBucket + "." + q.wkey)
	m.Header.Set("KV-Operation", "DEL")
	m.Data = note
	if _, err := q.js.PublishMsg(ctx, m); err != nil {
		t.Fatal(err)
	}
	awaitFree(t, ctx, q.srv, "src/x.go", 3*time.Second, q.alice)
}

// A releaser whose look-up of the next waiter predates that waiter being
// nudged (by an earlier holder that found nobody queued, deleted the claim,
// then saw the waiter arrive) writes the claim over to the waiter's lease,
// then finds the waiter's key deleted without a grant: it takes the waiter
// for one that left and passes the claim on in its name. The waiter, woken
// by the nudge, reads the claim in between and sees its lease: it must not
// take it then, or two agents hold the claim.
func TestNudgedWaiterDoesNotTakeAClaimPassedOn(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	q := queueBob(t, ctx)
	waiters, err := q.js.KeyValue(ctx, subjects.WaitersBucket)
	if err != nil {
		t.Fatal(err)
	}
	queued, err := waiters.Get(ctx, q.wkey)
	if err != nil {
		t.Fatal(err)
	}
	kw, err := waiters.Watch(ctx, q.wkey, jetstream.UpdatesOnly())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = kw.Stop() }()

	// The releaser writes the claim over to bob's lease, and a nudge gets
	// to bob's key before the releaser's grant note does.
	rev := q.claimRevision(t, ctx)
	at := time.Now().UTC()
	granted := claimRecord{Path: "src/x.go", Agent: q.w.Agent, Reason: q.w.Reason, ClaimedAt: at,
		TTLSeconds: q.w.TTLSeconds, Client: q.w.Client, Lease: q.w.Lease, Waiters: true}
	nrev, err := q.claims.Update(ctx, q.claimKey, granted.encode(), rev)
	if err != nil {
		t.Fatal(err)
	}
	if err := waiters.Delete(ctx, q.wkey, jetstream.LastRevision(queued.Revision())); err != nil {
		t.Fatal(err)
	}
	// Bob wakes and reads the claim: he either takes it or queues again.
	var took *Claim
	for took == nil {
		select {
		case took = <-q.got:
		case e := <-kw.Updates():
			if e == nil || e.Operation() != jetstream.KeyValuePut {
				continue
			}
		case <-ctx.Done():
			t.Fatal("bob neither took the claim nor queued again after the nudge")
		}
		if took == nil {
			break
		}
	}
	// The releaser's grant finds bob's key changed. If it takes him for
	// gone, it passes the claim on in his old lease's name.
	gone, err := q.alice.notifyWaiter(ctx, waiterRef{key: q.wkey, rev: queued.Revision(), rec: q.w},
		&wakeup{Revision: rev, Lease: q.w.Lease, ClaimedAt: at})
	if err != nil {
		t.Fatal(err)
	}
	if gone {
		if err := q.alice.passOn(ctx, q.claimKey, nrev, granted, passOptions{behalf: true}); err != nil {
			t.Fatal(err)
		}
	}
	if took == nil {
		select {
		case took = <-q.got:
		case <-ctx.Done():
			t.Fatal("bob never got the claim")
		}
	}
	// Whatever the order, bob's claim must be the one the store has.
	e, err := q.claims.Get(ctx, q.claimKey)
	if err != nil {
		t.Fatalf("bob holds token %d, but the claim is gone from the store: %v", took.Token, err)
	}
	rec, err := decodeClaim(q.claimKey, e.Value())
	if err != nil {
		t.Fatal(err)
	}
	if rec.Lease != took.lease.leaseID() || took.Token > e.Revision() || !took.Held() {
		t.Fatalf("bob holds token %d (lease %s), the store has revision %d for lease %s (agent %s)",
			took.Token, took.lease.leaseID(), e.Revision(), rec.Lease, rec.Agent)
	}
}

// A holder that got the claim with a grant note naming nobody after it
// looks up, while it holds, both its successor and the waiter after that
// one: its release hands the claim on with a note naming who comes next,
// so the next holder's release needs no look-up on the way.
func TestGrantNoteNamesTheWaiterAfter(t *testing.T) {
	srv := testenv.Start(t)
	ctx := testCtx(t, 30*time.Second)
	alice := newClient(t, srv, "alice") // provisions the buckets
	js := srv.JetStream(t)
	waiters, err := js.KeyValue(ctx, subjects.WaitersBucket)
	if err != nil {
		t.Fatal(err)
	}
	kw, err := waiters.WatchAll(ctx, jetstream.UpdatesOnly())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = kw.Stop() }()
	held, err := alice.TryAcquire(ctx, "src/next.go")
	if err != nil {
		t.Fatal(err)
	}
	key, _, _ := subjects.ClaimKey("test", "src/next.go")
	names := []string{"bob", "carol", "dave"}
	wkeys := make(map[string]string)
	got := make(chan *Claim, len(names))
	for _, name := range names {
		// (Waits that find who queued behind them need no note naming
		// it: TestWaiterFindsWhoQueuedBehindIt.)
		c := newClient(t, srv, name, noLookBehind())
		wkeys[subjects.WaiterKey(c.ID(), key)] = name
		go func() {
			cl, err := c.Acquire(ctx, "src/next.go")
			if err != nil && !errors.Is(err, ErrClosed) { // dave waits till the end
				t.Errorf("%s Acquire: %v", name, err)
			}
			got <- cl
		}()
		// Queued (its key written) before the next one comes.
		for queued := false; !queued; {
			select {
			case e := <-kw.Updates():
				queued = e != nil && e.Operation() == jetstream.KeyValuePut && wkeys[e.Key()] == name
			case <-ctx.Done():
				t.Fatalf("%s never queued", name)
			}
		}
	}
	if err := held.Release(ctx); err != nil {
		t.Fatal(err)
	}
	// bob gets it and releases at once; carol's grant note must name dave.
	releaseGrant(ctx, t, got, "bob")
	for {
		select {
		case e := <-kw.Updates():
			if e == nil || e.Operation() != jetstream.KeyValueDelete || wkeys[e.Key()] != "carol" {
				continue
			}
			var note wakeup
			if err := json.Unmarshal(e.Value(), &note); err != nil || note.Revision == 0 {
				t.Fatalf("carol's key deleted without a grant note: %q %v", e.Value(), err)
			}
			if note.Next == nil || wkeys[note.Next.Key] != "dave" {
				t.Fatalf("carol's grant note names %+v as next, want dave's key", note.Next)
			}
			return
		case <-ctx.Done():
			t.Fatal("carol was never granted the claim")
		}
	}
}
