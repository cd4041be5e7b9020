package coord

import (
	"errors"
	"testing"
	"time"

	"github.com/cogos-dev/coord/subjects"
	"github.com/cogos-dev/coord/testenv"
)

// TestKeepaliveHolds: a claim with a 2 s TTL stays held for 10 s while its
// client lives: same token, never lost, and refused to another agent
// throughout.
func TestKeepaliveHolds(t *testing.T) {
	srv := testenv.Start(t)
	a := newClient(t, srv, "alice")
	b := newClient(t, srv, "bob")
	ctx := testCtx(t, 30*time.Second)
	const ttl = 2 * time.Second
	cl, err := a.TryAcquire(ctx, "kept/file", WithTTL(ttl))
	if err != nil {
		t.Fatal(err)
	}
	firstRev := cl.Revision()
	key, _, _ := subjects.ClaimKey("test", "kept/file")
	leaseID := cl.lease.leaseID()
	start := time.Now()
	checks := 0
	for time.Since(start) < 10*time.Second {
		select {
		case <-cl.Lost():
			t.Fatalf("claim lost after %v: %v", time.Since(start), cl.Err())
		case <-time.After(400 * time.Millisecond):
		}
		got, err := b.Get(ctx, "kept/file")
		if err != nil || got.Agent != "alice" || got.Token != cl.Token {
			t.Fatalf("at %v Get = %+v, %v; want alice, token %d", time.Since(start), got, err, cl.Token)
		}
		if e, err := b.claims.Get(ctx, key); err != nil {
			t.Fatalf("at %v raw Get: %v", time.Since(start), err)
		} else if rec, err := decodeClaim(key, e.Value); err != nil || rec.Lease != leaseID {
			t.Fatalf("at %v stored lease %q, %v; want the same holding %q", time.Since(start), rec.Lease, err, leaseID)
		}
		if _, err := b.TryAcquire(ctx, "kept/file"); !errors.Is(err, ErrClaimed) {
			t.Fatalf("at %v bob TryAcquire = %v; want ErrClaimed", time.Since(start), err)
		}
		checks++
	}
	if cl.Err() != nil || !cl.Held() {
		t.Fatalf("after 10s: held %v, err %v", cl.Held(), cl.Err())
	}
	// Renewals happened (the revision moved) and kept the lease ahead.
	if cl.Revision() == firstRev {
		t.Fatal("revision never moved: the claim was not renewed")
	}
	t.Logf("%d checks over 10s, revision %d -> %d", checks, firstRev, cl.Revision())
	if err := cl.Release(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestKeepaliveLost: a holder that cannot renew (the server is gone) is
// told through Lost within about one TTL, with an error wrapping ErrClaimLost.
func TestKeepaliveLost(t *testing.T) {
	srv := testenv.Start(t)
	a := newClient(t, srv, "alice")
	ctx := testCtx(t, 30*time.Second)
	const ttl = 2 * time.Second
	cl, err := a.TryAcquire(ctx, "doomed/file", WithTTL(ttl))
	if err != nil {
		t.Fatal(err)
	}
	srv.Shutdown()
	stopped := time.Now()
	select {
	case <-cl.Lost():
	case <-time.After(ttl + time.Second):
		t.Fatalf("Lost not closed %v after the server went away", ttl+time.Second)
	}
	d := time.Since(stopped)
	t.Logf("lost %v after the server went away: %v", d, cl.Err())
	if d > ttl+time.Second {
		t.Fatalf("Lost closed %v after the server went away; want within ~TTL (%v)", d, ttl)
	}
	if !errors.Is(cl.Err(), ErrClaimLost) {
		t.Fatalf("Err = %v, want ErrClaimLost", cl.Err())
	}
	if cl.Held() {
		t.Fatal("Held after Lost")
	}
	if len(a.Held()) != 0 {
		t.Fatalf("client still lists %d held claims", len(a.Held()))
	}
}
