package coord

import (
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/cogos-dev/coord/subjects"
	"github.com/cogos-dev/coord/testenv"
)

// A releaser whose wake-up finds the waiter's key already removed must
// tell a waiter that took the claim (its key removed with a "taken" note)
// from one that gave up (removed without): passing the claim on in the
// name of the first would make two holders.
func TestNotifyWaiterTellsTakenFromGone(t *testing.T) {
	srv := testenv.Start(t)
	c := newClient(t, srv, "releaser")
	ctx := testCtx(t, 10*time.Second)
	claimKey, _, _ := subjects.ClaimKey("test", "src/x.go")
	for _, tc := range []struct {
		name     string
		note     []byte
		wantGone bool
	}{
		{"taken", mustJSON(t, wakeup{Lease: "L1", Taken: true}), false},
		{"taken by another wait", mustJSON(t, wakeup{Lease: "L0", Taken: true}), true},
		{"gave up", nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wkey := subjects.WaiterKey("client-"+tc.name[:4], claimKey)
			rec := waiterRecord{Path: "src/x.go", Agent: "x", Client: "c", Lease: "L1", TTLSeconds: 30}
			rev, err := c.waiters.Put(ctx, wkey, rec.encode(), time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			// The waiter removes its own key first.
			if _, err := c.waiters.DeleteWithNote(ctx, wkey, rev, tc.note); err != nil {
				t.Fatal(err)
			}
			gone, err := c.notifyWaiter(ctx, waiterRef{key: wkey, rev: rev, rec: rec}, &wakeup{Revision: 7, Lease: "L1"})
			if err != nil {
				t.Fatal(err)
			}
			if gone != tc.wantGone {
				t.Fatalf("gone = %v, want %v", gone, tc.wantGone)
			}
		})
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// noLookBehind turns off a wait's look-up of who queued behind it, so
// that tests of grant notes see the note path.
func noLookBehind() Option { return lookBehindAfter(0) }

// lookBehindAfter has a wait look up who queued behind it d after it
// queued (0: never).
func lookBehindAfter(d time.Duration) Option {
	return func(o *options) error {
		o.successorAfter = d
		return nil
	}
}

// A wait that has queued for a while finds who queued behind it: once
// granted, it knows its successor without a look-up, and its release
// hands the claim straight to that waiter.
func TestWaiterFindsWhoQueuedBehindIt(t *testing.T) {
	srv := testenv.Start(t)
	ctx := testCtx(t, 30*time.Second)
	alice := newClient(t, srv, "alice")
	// bob looks late enough for carol to have queued behind him by then.
	bob := newClient(t, srv, "bob", lookBehindAfter(300*time.Millisecond))
	carol := newClient(t, srv, "carol")
	key, _, _ := subjects.ClaimKey("test", "src/behind.go")
	carolKey := subjects.WaiterKey(carol.ID(), key)
	foundCarol := make(chan struct{})
	var once sync.Once
	bob.testHookBehind = func(n *nextRef) {
		if n != nil && n.Key == carolKey {
			once.Do(func() { close(foundCarol) })
		}
	}
	held, err := alice.TryAcquire(ctx, "src/behind.go")
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan *Claim, 2)
	acquire := func(c *Client) {
		cl, err := c.Acquire(ctx, "src/behind.go")
		if err != nil {
			t.Errorf("%s Acquire: %v", c.opts.agent, err)
		}
		got <- cl
	}
	go acquire(bob)
	eventually(t, 10*time.Second, "bob queued", func() bool {
		e, err := alice.waiters.Get(ctx, subjects.WaiterKey(bob.ID(), key))
		return err == nil && e.Live()
	})
	go acquire(carol)
	select {
	case <-foundCarol:
	case <-ctx.Done():
		t.Fatal("bob never found carol queued behind him")
	}
	if err := held.Release(ctx); err != nil {
		t.Fatal(err)
	}
	cl := <-got
	if cl == nil || cl.Agent != "bob" {
		t.Fatalf("first grant: %+v, want bob", cl)
	}
	// Known at once, from bob's own look-up: no look-up runs for it.
	l := cl.lease
	l.mu.Lock()
	p, after := l.successor, l.after
	l.mu.Unlock()
	if p == nil || len(p) != 1 || after != nil {
		t.Fatalf("bob's successor not known when granted (successor %v ready %d, after %v)", p, len(p), after)
	}
	if err := cl.Release(ctx); err != nil {
		t.Fatal(err)
	}
	releaseGrant(ctx, t, got, "carol")
}
