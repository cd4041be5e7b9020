package coord

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/cogos-dev/coord/testenv"
)

// queued waits until the claim on path is flagged as having waiters, which
// a blocked Acquire does once its waiter key is written.
func queued(t *testing.T, c *Client, path string) {
	t.Helper()
	key, _, err := c.claimKey(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t, 10*time.Second)
	eventually(t, 5*time.Second, "waiter queued on "+path, func() bool {
		e, err := c.claims.Get(ctx, key)
		if err != nil {
			return false
		}
		rec, err := decodeClaim(key, e.Value)
		return err == nil && rec.Waiters
	})
}

// acquireAsync starts a blocking Acquire and reports when it returned.
type acquired struct {
	cl  *Claim
	err error
	at  time.Time
}

func acquireAsync(t *testing.T, c *Client, path string, within time.Duration) <-chan acquired {
	ch := make(chan acquired, 1)
	ctx := testCtx(t, within)
	go func() {
		cl, err := c.Acquire(ctx, path)
		ch <- acquired{cl, err, time.Now()}
	}()
	return ch
}

// TestAcquireWokenByRelease: a blocked Acquire gets the claim as soon as
// the holder releases it, with a higher token.
func TestAcquireWokenByRelease(t *testing.T) {
	srv := testenv.Start(t)
	a := newClient(t, srv, "alice")
	b := newClient(t, srv, "bob")
	ctx := testCtx(t, 20*time.Second)
	ca, err := a.TryAcquire(ctx, "src/main.go")
	if err != nil {
		t.Fatal(err)
	}
	got := acquireAsync(t, b, "src/main.go", 10*time.Second)
	queued(t, a, "src/main.go")
	released := time.Now()
	if err := ca.Release(ctx); err != nil {
		t.Fatal(err)
	}
	r := <-got
	if r.err != nil {
		t.Fatalf("bob Acquire: %v", r.err)
	}
	if d := r.at.Sub(released); d > time.Second {
		t.Fatalf("bob got the claim %v after the release; want at once", d)
	}
	if r.cl.Token <= ca.Token || r.cl.Agent != "bob" || !r.cl.Held() {
		t.Fatalf("bob's claim %+v (held %v): want agent bob, token above %d", r.cl, r.cl.Held(), ca.Token)
	}
	if owner, err := a.Owner(ctx, "src/main.go"); err != nil || owner != "bob" {
		t.Fatalf("Owner = %q, %v; want bob", owner, err)
	}
}

// TestAcquireTimeout: a wait bounded by a deadline gives ErrTimeout, and the
// waiter leaves the queue: the next release does not hand it the claim.
func TestAcquireTimeout(t *testing.T) {
	srv := testenv.Start(t)
	a := newClient(t, srv, "alice")
	b := newClient(t, srv, "bob")
	c := newClient(t, srv, "carol")
	ctx := testCtx(t, 20*time.Second)
	ca, err := a.TryAcquire(ctx, "f")
	if err != nil {
		t.Fatal(err)
	}
	got := acquireAsync(t, b, "f", 700*time.Millisecond)
	r := <-got
	if !errors.Is(r.err, ErrTimeout) || r.cl != nil {
		t.Fatalf("bob Acquire past its deadline: %v, %v; want ErrTimeout", r.cl, r.err)
	}
	if err := ca.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if cc, err := c.TryAcquire(ctx, "f"); err != nil {
		t.Fatalf("carol TryAcquire after the release: %v (owner left to a departed waiter?)", err)
	} else if cc.Agent != "carol" {
		t.Fatalf("carol's claim agent %q", cc.Agent)
	}
}

// TestClaimExpiry: a holder that stops renewing (client closed without
// release, or connection dropped) frees the path within TTL + 1 s, and a
// waiter blocked on it gets it at once.
func TestClaimExpiry(t *testing.T) {
	const ttl = 2 * time.Second
	for _, how := range []string{"closed", "conn dropped"} {
		for _, waiter := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/waiter=%v", how, waiter), func(t *testing.T) {
				t.Parallel()
				srv := testenv.Start(t)
				ctx := testCtx(t, 20*time.Second)
				b := newClient(t, srv, "bob")
				var (
					a    *Client
					halt func()
				)
				if how == "closed" {
					a = newClient(t, srv, "alice")
					halt = func() { a.Close() }
				} else {
					nc := srv.Connect(t)
					a = newConnClient(t, nc, "alice")
					halt = nc.Close
				}
				path := "expiring/" + how
				ca, err := a.TryAcquire(ctx, path, WithTTL(ttl))
				if err != nil {
					t.Fatal(err)
				}
				var got <-chan acquired
				if waiter {
					got = acquireAsync(t, b, path, 15*time.Second)
					queued(t, b, path)
				}
				// Let a renewal or two happen, so the lease is not just the first grant.
				time.Sleep(ttl / 2)
				halt()
				stopped := time.Now()
				if waiter {
					r := <-got
					if r.err != nil {
						t.Fatalf("waiter Acquire: %v", r.err)
					}
					d := r.at.Sub(stopped)
					t.Logf("waiter got the claim %v after the holder stopped", d)
					if d > ttl+1500*time.Millisecond {
						t.Fatalf("waiter got the claim %v after the holder stopped; want < TTL + 1.5s", d)
					}
					if r.cl.Token <= ca.Token {
						t.Fatalf("token %d after %d", r.cl.Token, ca.Token)
					}
					return
				}
				for {
					held, err := b.IsClaimed(ctx, path)
					if err != nil {
						t.Fatal(err)
					}
					if !held {
						break
					}
					if d := time.Since(stopped); d > ttl+time.Second {
						t.Fatalf("still claimed %v after the holder stopped; want free within TTL + 1s", d)
					}
					time.Sleep(20 * time.Millisecond)
				}
				t.Logf("free %v after the holder stopped", time.Since(stopped))
				if _, err := b.TryAcquire(ctx, path); err != nil {
					t.Fatalf("TryAcquire after expiry: %v", err)
				}
			})
		}
	}
}

// TestAcquireFairness: 16 agents contend on one path with blocking Acquire
// and no hold time; the waiter queue must serve each at least half the mean
// number of turns (the benchmark reports the exact figure).
func TestAcquireFairness(t *testing.T) {
	srv := testenv.Start(t)
	const n = 16
	clients := make([]*Client, n)
	agents := make([]string, n)
	for i := range clients {
		agents[i] = fmt.Sprintf("agent-%02d", i)
		clients[i] = newClient(t, srv, agents[i])
	}
	ctx := testCtx(t, 30*time.Second)
	res, err := contend(ctx, clients, "hot/path", 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	minTurns, mean, ratio := res.turns.fairness(agents)
	slices.Sort(res.waits)
	t.Logf("%d handoffs in %v (%.0f/s), wait p50 %v p99 %v, turns min %d mean %.1f (fairness %.2f)",
		res.handoffs, res.elapsed.Round(time.Millisecond), float64(res.handoffs)/res.elapsed.Seconds(),
		percentile(res.waits, 0.5), percentile(res.waits, 0.99), minTurns, mean, ratio)
	if mean < 2 {
		t.Fatalf("mean %.1f turns: too few handoffs to judge fairness", mean)
	}
	if ratio < 0.5 {
		t.Fatalf("fairness %.2f (min %d, mean %.1f): an agent was starved; want >= 0.5", ratio, minTurns, mean)
	}
}

// Closing a client ends its blocked Acquire with ErrClosed, however far
// the wait had got (a request cut off by the closed connection included).
func TestAcquireEndsWithErrClosedOnClose(t *testing.T) {
	srv := testenv.Start(t)
	ctx := testCtx(t, 20*time.Second)
	a := newClient(t, srv, "alice")
	b := newClient(t, srv, "bob")
	if _, err := a.TryAcquire(ctx, "closing"); err != nil {
		t.Fatal(err)
	}
	got := acquireAsync(t, b, "closing", 15*time.Second)
	queued(t, b, "closing")
	b.Close()
	if r := <-got; !errors.Is(r.err, ErrClosed) {
		t.Fatalf("Acquire across Close: %v, %v; want ErrClosed", r.cl, r.err)
	}
}
