package coord

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cogos-dev/coord/subjects"
	"github.com/cogos-dev/coord/testenv"
)

// TestClaimBasics: try-acquire, ErrClaimed naming the owner, re-claim by the
// holder renews the same holding, Get/Owner/IsClaimed/List, release.
func TestClaimBasics(t *testing.T) {
	srv := testenv.Start(t)
	a := newClient(t, srv, "alice")
	b := newClient(t, srv, "bob")
	ctx := testCtx(t, 20*time.Second)

	ca, err := a.TryAcquire(ctx, "src/./main.go", WithReason("edit"), WithTTL(5*time.Second))
	if err != nil {
		t.Fatalf("alice TryAcquire: %v", err)
	}
	if ca.Path != "src/main.go" || ca.Agent != "alice" || ca.Reason != "edit" || ca.TTLSeconds != 5 || ca.Token == 0 || !ca.Held() {
		t.Fatalf("claim = %+v, want path src/main.go, agent alice, reason edit, ttl 5, token > 0, held", ca)
	}
	_, err = b.TryAcquire(ctx, "src/main.go")
	var ce *ClaimedError
	if !errors.Is(err, ErrClaimed) || !errors.As(err, &ce) || ce.Owner != "alice" || ce.Claim.Token != ca.Token {
		t.Fatalf("bob TryAcquire: got %v, want ClaimedError owner alice token %d", err, ca.Token)
	}
	again, err := a.TryAcquire(ctx, "src/main.go", WithReason("still editing"), WithTTL(5*time.Second))
	if err != nil {
		t.Fatalf("alice re-claim: %v", err)
	}
	if again.Token != ca.Token || again.Reason != "still editing" {
		t.Fatalf("re-claim: token %d reason %q, want token %d reason %q", again.Token, again.Reason, ca.Token, "still editing")
	}
	if owner, err := b.Owner(ctx, "src/main.go"); err != nil || owner != "alice" {
		t.Fatalf("Owner = %q, %v; want alice", owner, err)
	}
	if held, err := b.IsClaimed(ctx, "src/main.go"); err != nil || !held {
		t.Fatalf("IsClaimed = %v, %v; want true", held, err)
	}
	list, err := b.List(ctx)
	if err != nil || len(list) != 1 || list[0].Agent != "alice" || list[0].Path != "src/main.go" || list[0].Token != ca.Token {
		t.Fatalf("List = %+v, %v; want alice's claim", list, err)
	}
	if err := ca.Release(ctx); err != nil {
		t.Fatalf("Release: %v", err)
	}
	select {
	case <-ca.Lost():
	default:
		t.Fatal("Lost not closed after Release")
	}
	if ca.Err() != nil {
		t.Fatalf("Err after clean Release = %v, want nil", ca.Err())
	}
	if _, err := b.Get(ctx, "src/main.go"); !errors.Is(err, ErrNotClaimed) {
		t.Fatalf("Get after release: %v, want ErrNotClaimed", err)
	}
	if held, err := b.IsClaimed(ctx, "src/main.go"); err != nil || held {
		t.Fatalf("IsClaimed after release = %v, %v; want false", held, err)
	}
	cb, err := b.TryAcquire(ctx, "src/main.go")
	if err != nil {
		t.Fatalf("bob TryAcquire after release: %v", err)
	}
	if cb.Token <= ca.Token {
		t.Fatalf("token %d after %d: want strictly increasing", cb.Token, ca.Token)
	}
}

// TestClaimMutualExclusion: 32 agents on 8 shared connections hammer one
// path with a mix of TryAcquire and blocking Acquire. Inside the critical
// section a holder slot proves there was never a second holder, and every
// holder's token is above its predecessor's.
func TestClaimMutualExclusion(t *testing.T) { mutualExclusion(t, false) }

// Waiters that give up at random moments, some of them while the claim is
// being handed to them (the grant note and the claim write are in flight):
// the claim must never have two holders, and none may be left behind held
// in the name of a waiter that left.
func TestClaimMutualExclusionWithGiveUps(t *testing.T) { mutualExclusion(t, true) }

func mutualExclusion(t *testing.T, giveUps bool) {
	srv := testenv.Start(t)
	const conns, workers = 8, 32
	ncs := make([]*nats.Conn, conns)
	for i := range ncs {
		ncs[i] = srv.Connect(t)
	}
	clients := make([]*Client, workers)
	for i := range clients {
		clients[i] = newConnClient(t, ncs[i%conns], fmt.Sprintf("agent-%02d", i), WithClaimTTL(10*time.Second))
	}
	const path = "shared/resource"
	var (
		holder    atomic.Int64  // 0: free, else worker+1
		lastToken atomic.Uint64 // token of the latest holder
		grants    atomic.Int64
		tries     atomic.Int64
		refused   atomic.Int64
		gaveUp    atomic.Int64
		violation atomic.Value // first violation seen
	)
	fail := func(format string, a ...any) { violation.CompareAndSwap(nil, fmt.Sprintf(format, a...)) }
	stop := time.Now().Add(3 * time.Second)
	ctx := testCtx(t, 30*time.Second)
	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(i), 7))
			for time.Now().Before(stop) {
				var (
					cl  *Claim
					err error
				)
				if rng.IntN(2) == 0 {
					tries.Add(1)
					cl, err = c.TryAcquire(ctx, path)
					if errors.Is(err, ErrClaimed) {
						refused.Add(1)
						continue
					}
				} else {
					limit, impatient := 5*time.Second, giveUps && rng.IntN(2) == 0
					if impatient {
						limit = time.Duration(rng.IntN(3000)) * time.Microsecond
					}
					actx, cancel := context.WithTimeout(ctx, limit)
					cl, err = c.Acquire(actx, path)
					cancel()
					if impatient && errors.Is(err, ErrTimeout) {
						gaveUp.Add(1)
						continue
					}
				}
				if err != nil {
					fail("agent %d acquire: %v", i, err)
					return
				}
				// Critical section.
				if prev := holder.Swap(int64(i + 1)); prev != 0 {
					fail("agent %d got the claim while agent %d held it", i, prev-1)
				}
				if last := lastToken.Swap(cl.Token); cl.Token <= last {
					fail("agent %d token %d not above previous holder's %d", i, cl.Token, last)
				}
				if !cl.Held() {
					fail("agent %d: fresh claim not held: %v", i, cl.Err())
				}
				grants.Add(1)
				if rng.IntN(4) == 0 {
					time.Sleep(time.Duration(rng.IntN(500)) * time.Microsecond)
				}
				if !holder.CompareAndSwap(int64(i+1), 0) {
					fail("agent %d: holder slot changed while it held the claim", i)
				}
				if err := cl.Release(ctx); err != nil {
					fail("agent %d release: %v", i, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if v := violation.Load(); v != nil {
		t.Fatal(v)
	}
	t.Logf("%d grants, %d try-acquires (%d refused), %d waits given up in 3s", grants.Load(), tries.Load(), refused.Load(), gaveUp.Load())
	if giveUps && gaveUp.Load() == 0 {
		t.Fatal("no wait was given up: the test did not exercise leaving the queue")
	}
	if grants.Load() < int64(workers) {
		t.Fatalf("only %d grants: the test did not exercise the claim", grants.Load())
	}
	if refused.Load() == 0 {
		t.Fatal("no TryAcquire was ever refused: there was no contention")
	}
	// A grant that reached a wait just as it gave up is passed on by that
	// client in the background: the claim is free a moment later.
	awaitFree(t, ctx, srv, path, 3*time.Second, clients[0])
}

// awaitFree waits (on a watch of the claim key) until path is not claimed.
func awaitFree(t *testing.T, ctx context.Context, srv *testenv.Server, path string, within time.Duration, c *Client) {
	t.Helper()
	kv, err := srv.JetStream(t).KeyValue(ctx, subjects.ClaimsBucket)
	if err != nil {
		t.Fatal(err)
	}
	key, _, _ := subjects.ClaimKey("test", path)
	w, err := kv.Watch(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = w.Stop() }()
	timeout := time.After(within)
	held, initial := false, true
	for {
		select {
		case e := <-w.Updates():
			if e != nil {
				held = e.Operation() == jetstream.KeyValuePut
			} else {
				initial = false
			}
			if !held && !initial {
				return
			}
		case <-timeout:
			got, err := c.Get(ctx, path)
			t.Fatalf("after everyone released, still claimed %v later: Get = %+v, %v", within, got, err)
		}
	}
}

// TestClaimReleaseSafety: nobody releases what they do not hold.
func TestClaimReleaseSafety(t *testing.T) {
	srv := testenv.Start(t)
	ctx := testCtx(t, 30*time.Second)
	a := newClient(t, srv, "alice")
	a2 := newClient(t, srv, "alice") // the same agent, another client
	b := newClient(t, srv, "bob")
	kv, err := srv.JetStream(t).KeyValue(ctx, subjects.ClaimsBucket)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("other agent", func(t *testing.T) {
		ca, err := a.TryAcquire(ctx, "p/other")
		if err != nil {
			t.Fatal(err)
		}
		if err := b.ReleasePath(ctx, "p/other"); !errors.Is(err, ErrNotOwner) {
			t.Fatalf("bob ReleasePath of alice's claim: %v, want ErrNotOwner", err)
		}
		if err := b.Release(ctx, ca); !errors.Is(err, ErrNotOwner) {
			t.Fatalf("bob Release of alice's Claim: %v, want ErrNotOwner", err)
		}
		got, err := b.Get(ctx, "p/other")
		if err != nil || got.Agent != "alice" || got.Token != ca.Token {
			t.Fatalf("after bob's attempts Get = %+v, %v; want alice's claim intact", got, err)
		}
		var listed Claim = got
		if err := b.Release(ctx, &listed); !errors.Is(err, ErrNotOwner) {
			t.Fatalf("Release of a listed (not held) claim: %v, want ErrNotOwner", err)
		}
		if err := ca.Release(ctx); err != nil {
			t.Fatalf("alice Release: %v", err)
		}
		if err := ca.Release(ctx); err != nil {
			t.Fatalf("second Release of a released claim: %v, want nil", err)
		}
		if err := a.ReleasePath(ctx, "p/other"); err != nil {
			t.Fatalf("ReleasePath of a free path: %v, want nil", err)
		}
	})

	// An old holding of alice's, taken away behind her back (an operator's
	// delete) and followed by a new holding of alice's through another
	// client: the old Claim must neither release nor renew the new one.
	stale := func(t *testing.T, path string, waitLost bool) {
		c1, err := a.TryAcquire(ctx, path, WithTTL(3*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		key, _, _ := subjects.ClaimKey("test", path)
		if err := kv.Delete(ctx, key); err != nil {
			t.Fatal(err)
		}
		c2, err := a2.TryAcquire(ctx, path, WithTTL(3*time.Second))
		if err != nil {
			t.Fatalf("alice's second client TryAcquire: %v", err)
		}
		if c2.Token <= c1.Token {
			t.Fatalf("new token %d not above old %d", c2.Token, c1.Token)
		}
		if waitLost {
			// The old lease's next renewal (at TTL/3) is revision-checked
			// and must fail, and tell its holder.
			select {
			case <-c1.Lost():
			case <-time.After(5 * time.Second):
				t.Fatal("old claim not reported lost after its key was taken over")
			}
			if !errors.Is(c1.Err(), ErrClaimLost) {
				t.Fatalf("old claim Err = %v, want ErrClaimLost", c1.Err())
			}
		}
		if err := c1.Release(ctx); !errors.Is(err, ErrNotOwner) {
			t.Fatalf("old Claim Release: %v, want ErrNotOwner", err)
		}
		got, err := b.Get(ctx, path)
		if err != nil || got.Token != c2.Token || got.Agent != "alice" {
			t.Fatalf("after the old Claim's release Get = %+v, %v; want the new claim (token %d)", got, err, c2.Token)
		}
		if !c2.Held() {
			t.Fatalf("new claim lost: %v", c2.Err())
		}
		if err := c2.Release(ctx); err != nil {
			t.Fatalf("new claim Release: %v", err)
		}
	}
	t.Run("old claim before it noticed", func(t *testing.T) { stale(t, "p/stale1", false) })
	t.Run("old claim after it was lost", func(t *testing.T) { stale(t, "p/stale2", true) })
}

// TestClaimDurability: a claim survives a server restart with the same store,
// and its keepalive resumes.
func TestClaimDurability(t *testing.T) {
	srv := testenv.Start(t)
	ctx := testCtx(t, 30*time.Second)
	a := newClient(t, srv, "alice")
	b := newClient(t, srv, "bob")
	const ttl = 2 * time.Second
	cl, err := a.TryAcquire(ctx, "durable/file", WithTTL(ttl))
	if err != nil {
		t.Fatal(err)
	}
	srv.Restart()
	restarted := time.Now()
	var got Claim
	eventually(t, 5*time.Second, "Get after restart", func() bool {
		got, err = b.Get(ctx, "durable/file")
		return err == nil || errors.Is(err, ErrNotClaimed)
	})
	if err != nil || got.Agent != "alice" || got.Token != cl.Token {
		t.Fatalf("after restart Get = %+v, %v; want alice, token %d", got, err, cl.Token)
	}
	for time.Since(restarted) < 2*ttl {
		select {
		case <-cl.Lost():
			t.Fatalf("claim lost %v after restart: %v", time.Since(restarted), cl.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
	got, err = b.Get(ctx, "durable/file")
	if err != nil || got.Agent != "alice" || got.Token != cl.Token {
		t.Fatalf("2*TTL after restart Get = %+v, %v; want alice, token %d", got, err, cl.Token)
	}
	if _, err := b.TryAcquire(ctx, "durable/file"); !errors.Is(err, ErrClaimed) {
		t.Fatalf("bob TryAcquire 2*TTL after restart: %v, want ErrClaimed", err)
	}
}

// TestClaimBadInput: each invalid path, agent and namespace gets its own
// sentinel; nothing panics or hangs.
func TestClaimBadInput(t *testing.T) {
	srv := testenv.Start(t)
	ctx := testCtx(t, 20*time.Second)
	c := newClient(t, srv, "alice")

	paths := []struct{ name, path string }{
		{"empty", ""},
		{"dot", "."},
		{"dotdot", ".."},
		{"escape", "../x"},
		{"escape after clean", "a/../../x"},
		{"absolute", "/abs"},
		{"NUL", "a\x00b"},
		{"control", "a\x01b"},
		{"newline", "a\nb"},
		{"invalid UTF-8", "a\xffb"},
		{"too long", strings.Repeat("a", subjects.MaxPathBytes+1)},
		{"too deep", strings.Repeat("a/", subjects.MaxPathSegments) + "a"},
	}
	for _, tc := range paths {
		t.Run("path/"+tc.name, func(t *testing.T) {
			if _, err := c.TryAcquire(ctx, tc.path); !errors.Is(err, ErrInvalidPath) {
				t.Errorf("TryAcquire(%q) = %v, want ErrInvalidPath", tc.path, err)
			}
			if _, err := c.Acquire(ctx, tc.path); !errors.Is(err, ErrInvalidPath) {
				t.Errorf("Acquire(%q) = %v, want ErrInvalidPath", tc.path, err)
			}
			if _, err := c.Get(ctx, tc.path); !errors.Is(err, ErrInvalidPath) {
				t.Errorf("Get(%q) = %v, want ErrInvalidPath", tc.path, err)
			}
			if _, err := c.IsClaimed(ctx, tc.path); !errors.Is(err, ErrInvalidPath) {
				t.Errorf("IsClaimed(%q) = %v, want ErrInvalidPath", tc.path, err)
			}
			if err := c.ReleasePath(ctx, tc.path); !errors.Is(err, ErrInvalidPath) {
				t.Errorf("ReleasePath(%q) = %v, want ErrInvalidPath", tc.path, err)
			}
		})
	}

	names := []struct{ name, s string }{
		{"empty", ""},
		{"space", "a b"},
		{"tab", "a\tb"},
		{"NUL", "a\x00b"},
		{"control", "\x01"},
		{"invalid UTF-8", "\xff\xfe"},
	}
	for _, tc := range append(names, struct{ name, s string }{"too long", strings.Repeat("x", subjects.MaxNameBytes+1)}) {
		t.Run("agent/"+tc.name, func(t *testing.T) {
			_, err := New(ctx, WithURL(srv.URL()), WithAgent(tc.s), WithNamespace("test"))
			if !errors.Is(err, ErrInvalidAgent) {
				t.Errorf("New(WithAgent(%q)) = %v, want ErrInvalidAgent", tc.s, err)
			}
		})
	}
	for _, tc := range append(names, struct{ name, s string }{"too long", strings.Repeat("x", subjects.MaxNamespaceBytes+1)}) {
		t.Run("namespace/"+tc.name, func(t *testing.T) {
			_, err := New(ctx, WithURL(srv.URL()), WithAgent("alice"), WithNamespace(tc.s))
			if !errors.Is(err, ErrInvalidNamespace) {
				t.Errorf("New(WithNamespace(%q)) = %v, want ErrInvalidNamespace", tc.s, err)
			}
		})
	}
	options := []struct {
		name string
		opt  ClaimOption
	}{
		{"ttl zero", WithTTL(0)},
		{"ttl under a second", WithTTL(500 * time.Millisecond)},
		{"ttl over a day", WithTTL(25 * time.Hour)},
		{"reason too long", WithReason(strings.Repeat("r", 4097))},
	}
	for _, tc := range options {
		t.Run("option/"+tc.name, func(t *testing.T) {
			if _, err := c.TryAcquire(ctx, "ok", tc.opt); !errors.Is(err, ErrInvalidOption) {
				t.Errorf("TryAcquire with %s = %v, want ErrInvalidOption", tc.name, err)
			}
		})
	}
}

// TestClaimJunkInBucket: values written straight into the bucket (nats kv
// put) that are not claims are errors for their paths and skipped by List.
func TestClaimJunkInBucket(t *testing.T) {
	srv := testenv.Start(t)
	ctx := testCtx(t, 20*time.Second)
	c := newClient(t, srv, "alice")
	kv, err := srv.JetStream(t).KeyValue(ctx, subjects.ClaimsBucket)
	if err != nil {
		t.Fatal(err)
	}
	good, err := c.TryAcquire(ctx, "good/file")
	if err != nil {
		t.Fatal(err)
	}
	junk := map[string][]byte{
		"junk/bytes":    {0xff, 0x00, 'x'},
		"junk/text":     []byte("not json"),
		"junk/partial":  []byte(`{"path":"junk/partial","reason":"no agent, lease or ttl"}`),
		"junk/wrongtyp": []byte(`{"agent":7,"lease":"x","ttl_seconds":"soon"}`),
	}
	for p, v := range junk {
		key, _, err := subjects.ClaimKey("test", p)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := kv.Put(ctx, key, v); err != nil {
			t.Fatal(err)
		}
	}
	list, bad, err := c.ListChecked(ctx)
	if err != nil {
		t.Fatalf("ListChecked: %v", err)
	}
	if len(list) != 1 || list[0].Path != "good/file" || list[0].Token != good.Token {
		t.Fatalf("ListChecked claims = %+v, want only good/file", list)
	}
	if len(bad) != len(junk) {
		t.Fatalf("ListChecked reported %d bad entries (%v), want %d", len(bad), bad, len(junk))
	}
	for _, err := range bad {
		if !errors.Is(err, ErrBadValue) {
			t.Errorf("bad entry error %v, want ErrBadValue", err)
		}
	}
	if plain, err := c.List(ctx); err != nil || len(plain) != 1 {
		t.Fatalf("List = %+v, %v; want one claim", plain, err)
	}
	for p := range junk {
		if _, err := c.Get(ctx, p); !errors.Is(err, ErrBadValue) {
			t.Errorf("Get(%s) = %v, want ErrBadValue", p, err)
		}
		if _, err := c.TryAcquire(ctx, p); !errors.Is(err, ErrBadValue) {
			t.Errorf("TryAcquire(%s) = %v, want ErrBadValue", p, err)
		}
	}
	// A junk value in another namespace is not this namespace's business.
	if _, err := kv.Put(ctx, "other.x", []byte("junk")); err != nil {
		t.Fatal(err)
	}
	if _, bad2, err := c.ListChecked(ctx); err != nil || len(bad2) != len(junk) {
		t.Fatalf("ListChecked with junk in another namespace: %d bad, %v", len(bad2), err)
	}
}

// TestTryAcquireHotPath: on a path changing hands as fast as the server
// allows (zero hold times), TryAcquire either gets the claim or reports it
// claimed; it never leaks a revision mismatch from losing the race.
func TestTryAcquireHotPath(t *testing.T) {
	srv := testenv.Start(t)
	nc := srv.Connect(t)
	ctx := testCtx(t, 30*time.Second)
	const workers = 16
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		errs     []error
		grants   atomic.Int64
		deadline = time.Now().Add(2 * time.Second)
	)
	for i := range workers {
		c := newConnClient(t, nc, fmt.Sprintf("hot-%02d", i))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				cl, err := c.TryAcquire(ctx, "hot")
				if errors.Is(err, ErrClaimed) {
					continue
				}
				if err == nil {
					grants.Add(1)
					err = cl.Release(ctx)
				}
				if err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	t.Logf("%d grants", grants.Load())
	if len(errs) > 0 {
		t.Fatalf("%d workers failed, first: %v", len(errs), errs[0])
	}
}
