package coord

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cogos-dev/coord/kvstore"
	"github.com/cogos-dev/coord/subjects"
	"github.com/cogos-dev/coord/testenv"
)

// Accepting a handoff with claims moves them to the recipient with no gap:
// a third agent trying all along never gets them, no delete or expiry is
// ever written, and the sender can no longer renew or release them.
func TestHandoffClaimsTransfer(t *testing.T) {
	srv := testenv.Start(t)
	ctx := testCtx(t, 40*time.Second)
	alice := newClient(t, srv, "alice")
	bob := newClient(t, srv, "bob", WithClaimTTL(2*time.Second))
	carol := newClient(t, srv, "carol")

	// a.go renews every second, so alice's keepalive notices the loss;
	// b.go is released by alice before her keepalive looks.
	ca, err := alice.TryAcquire(ctx, "src/a.go", WithTTL(3*time.Second), WithReason("refactor"))
	if err != nil {
		t.Fatalf("acquire a: %v", err)
	}
	cb, err := alice.TryAcquire(ctx, "src/b.go", WithTTL(time.Minute))
	if err != nil {
		t.Fatalf("acquire b: %v", err)
	}
	paths := []string{"src/a.go", "src/b.go"}
	h, err := alice.Handoff(ctx, "bob", "src/", "take over", WithClaims(paths...))
	if err != nil {
		t.Fatalf("Handoff: %v", err)
	}
	if !slices.Equal(h.Claims, paths) {
		t.Fatalf("Handoff.Claims = %v, want %v", h.Claims, paths)
	}

	// Watch every write to the two keys from now on.
	var keys []string
	for _, p := range paths {
		k, _, _ := subjects.ClaimKey("test", p)
		keys = append(keys, k)
	}
	w, err := alice.claims.Watch(ctx, slices.Clone(keys), kvstore.UpdatesOnly())
	if err != nil {
		t.Fatalf("watch: %v", err)
	}
	defer w.Stop()

	// Carol tries to take the paths as fast as she can.
	var carolWon atomic.Int32
	var tries atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, p := range paths {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				tries.Add(1)
				cl, err := carol.TryAcquire(ctx, p, WithTTL(time.Minute))
				if err == nil {
					carolWon.Add(1)
					if err := cl.Release(context.Background()); err != nil {
						t.Errorf("carol release: %v", err)
					}
					continue
				}
				if !errors.Is(err, ErrClaimed) {
					t.Errorf("carol TryAcquire %s: %v", p, err)
					return
				}
			}
		}()
	}
	for tries.Load() < 20 {
		time.Sleep(time.Millisecond)
	}
	acc, err := bob.Accept(ctx, h.ID)
	if err != nil {
		t.Fatalf("Accept: %v", err)
	}
	before := tries.Load()
	for tries.Load() < before+20 {
		time.Sleep(time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if n := carolWon.Load(); n != 0 {
		t.Fatalf("carol took a transferred path %d times", n)
	}
	if len(acc.NotTransferred) != 0 {
		t.Fatalf("NotTransferred = %v, want none", acc.NotTransferred)
	}
	for i, p := range paths {
		got, err := carol.Get(ctx, p)
		if err != nil || got.Agent != "bob" {
			t.Fatalf("Get %s after accept = %+v, %v; want held by bob", p, got, err)
		}
		old := []*Claim{ca, cb}[i]
		if got.Token <= old.Token {
			t.Fatalf("%s token %d not above alice's %d", p, got.Token, old.Token)
		}
	}
	if held := bob.Held(); len(held) != 2 {
		t.Fatalf("bob.Held() = %d claims, want 2", len(held))
	}
	// Every write to the keys since the handoff was a put: never free.
	drain := testCtx(t, 300*time.Millisecond)
	toBob := 0
	for {
		ev, ok := w.Next(drain)
		if !ok {
			break
		}
		if ev.Entry.Op != kvstore.OpPut {
			t.Fatalf("key %s was %v during the transfer", ev.Entry.Key, ev.Entry.Op)
		}
		if rec, err := decodeClaim(ev.Entry.Key, ev.Entry.Value); err == nil && rec.Agent == "bob" {
			toBob++
		}
	}
	if toBob < 2 {
		t.Fatalf("watcher saw %d writes giving the keys to bob, want at least 2", toBob)
	}

	// b.go: alice's release comes before her keepalive noticed.
	if err := alice.Release(ctx, cb); !errors.Is(err, ErrNotOwner) {
		t.Fatalf("alice Release b: %v, want ErrNotOwner", err)
	}
	if err := alice.ReleasePath(ctx, "src/b.go"); !errors.Is(err, ErrNotOwner) {
		t.Fatalf("alice ReleasePath b: %v, want ErrNotOwner", err)
	}
	// a.go: alice's keepalive finds the claim gone to bob.
	select {
	case <-ca.Lost():
	case <-time.After(10 * time.Second):
		t.Fatalf("alice's claim on a.go not reported lost")
	}
	if !errors.Is(ca.Err(), ErrClaimLost) {
		t.Fatalf("alice a.go Err = %v, want ErrClaimLost", ca.Err())
	}
	if err := alice.Release(ctx, ca); !errors.Is(err, ErrNotOwner) {
		t.Fatalf("alice Release a: %v, want ErrNotOwner", err)
	}
	if err := alice.ReleasePath(ctx, "src/a.go"); !errors.Is(err, ErrNotOwner) {
		t.Fatalf("alice ReleasePath a: %v, want ErrNotOwner", err)
	}
	// Bob's client keeps them alive past their 2s TTL.
	time.Sleep(3 * time.Second)
	for _, p := range paths {
		if owner, err := carol.Owner(ctx, p); err != nil || owner != "bob" {
			t.Fatalf("%s owner after bob's TTL = %q, %v; want bob kept it alive", p, owner, err)
		}
	}
	if err := bob.ReleasePath(ctx, "src/a.go"); err != nil {
		t.Fatalf("bob ReleasePath: %v", err)
	}
	if _, err := carol.TryAcquire(ctx, "src/a.go"); err != nil {
		t.Fatalf("carol after bob's release: %v", err)
	}
}

// A path the sender gave up before the accept is reported, not moved; the
// rest are moved and the handoff is accepted.
func TestHandoffClaimNotTransferred(t *testing.T) {
	srv := testenv.Start(t)
	ctx := testCtx(t, 20*time.Second)
	alice := newClient(t, srv, "alice")
	bob := newClient(t, srv, "bob")
	dave := newClient(t, srv, "dave")
	if _, err := alice.TryAcquire(ctx, "keep.go"); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.TryAcquire(ctx, "gone.go"); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.TryAcquire(ctx, "taken.go"); err != nil {
		t.Fatal(err)
	}
	h, err := alice.Handoff(ctx, "bob", "work", "", WithClaims("keep.go", "gone.go", "taken.go", "keep.go"))
	if err != nil {
		t.Fatalf("Handoff: %v", err)
	}
	if want := []string{"keep.go", "gone.go", "taken.go"}; !slices.Equal(h.Claims, want) {
		t.Fatalf("Claims = %v, want %v (duplicates dropped)", h.Claims, want)
	}
	if err := alice.ReleasePath(ctx, "gone.go"); err != nil {
		t.Fatal(err)
	}
	if err := alice.ReleasePath(ctx, "taken.go"); err != nil {
		t.Fatal(err)
	}
	if _, err := dave.TryAcquire(ctx, "taken.go"); err != nil {
		t.Fatal(err)
	}
	acc, err := bob.Accept(ctx, h.ID)
	if err != nil {
		t.Fatalf("Accept: %v", err)
	}
	if want := []string{"gone.go", "taken.go"}; !slices.Equal(acc.NotTransferred, want) {
		t.Fatalf("NotTransferred = %v, want %v", acc.NotTransferred, want)
	}
	if o, _ := dave.Owner(ctx, "keep.go"); o != "bob" {
		t.Fatalf("keep.go owner %q, want bob", o)
	}
	if o, _ := dave.Owner(ctx, "taken.go"); o != "dave" {
		t.Fatalf("taken.go owner %q, want dave (untouched)", o)
	}
	if ok, _ := dave.IsClaimed(ctx, "gone.go"); ok {
		t.Fatalf("gone.go claimed after an accept that could not move it")
	}
	arch, err := bob.HandoffArchive(ctx, "")
	if err != nil || len(arch) != 1 || !slices.Equal(arch[0].NotTransferred, acc.NotTransferred) {
		t.Fatalf("archive = %+v, %v; want the NotTransferred paths recorded", arch, err)
	}
}

// A claim held by another client of the same agent (say the CLI's sidecar)
// can be handed off; a claim of another agent cannot.
func TestHandoffClaimOwnership(t *testing.T) {
	srv := testenv.Start(t)
	ctx := testCtx(t, 20*time.Second)
	alice := newClient(t, srv, "alice")
	sidecar := newClient(t, srv, "alice")
	bob := newClient(t, srv, "bob")
	cl, err := sidecar.TryAcquire(ctx, "shared.go")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bob.Handoff(ctx, "carol", "x", "", WithClaims("shared.go")); !errors.Is(err, ErrNotOwner) {
		t.Fatalf("bob handing off alice's claim: %v, want ErrNotOwner", err)
	}
	h, err := alice.Handoff(ctx, "bob", "x", "", WithClaims("shared.go"))
	if err != nil {
		t.Fatalf("Handoff of a claim held by the agent's other client: %v", err)
	}
	if _, err := bob.Accept(ctx, h.ID); err != nil {
		t.Fatalf("Accept: %v", err)
	}
	if err := sidecar.Release(ctx, cl); !errors.Is(err, ErrNotOwner) {
		t.Fatalf("sidecar Release after transfer: %v, want ErrNotOwner", err)
	}
	if o, _ := alice.Owner(ctx, "shared.go"); o != "bob" {
		t.Fatalf("owner %q, want bob", o)
	}
}

// An accept that moved the claims but failed before recording the decision
// can be retried: the retry recognises its own grant.
func TestHandoffAcceptRetryAfterTransfer(t *testing.T) {
	srv := testenv.Start(t)
	ctx := testCtx(t, 20*time.Second)
	alice := newClient(t, srv, "alice")
	bob := newClient(t, srv, "bob")
	if _, err := alice.TryAcquire(ctx, "r.go"); err != nil {
		t.Fatal(err)
	}
	h, err := alice.Handoff(ctx, "bob", "x", "", WithClaims("r.go"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := bob.handoffStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pend, _, err := bob.handoffSubjects("bob")
	if err != nil {
		t.Fatal(err)
	}
	stored, _, ok, err := getHandoff(ctx, st, pend+"."+h.ID)
	if err != nil || !ok {
		t.Fatalf("getHandoff: %v %v", ok, err)
	}
	// The first try moves the claim, then "fails".
	if lost, err := bob.transferClaims(ctx, stored); err != nil || len(lost) != 0 {
		t.Fatalf("transferClaims = %v, %v", lost, err)
	}
	held := bob.Held()
	// A second client of bob retries the accept and adopts the grant.
	bob2 := newClient(t, srv, "bob")
	acc, err := bob2.Accept(ctx, h.ID)
	if err != nil || len(acc.NotTransferred) != 0 {
		t.Fatalf("retried Accept = %+v, %v; want r.go counted as moved", acc, err)
	}
	if len(held) != 1 || len(bob2.Held()) != 1 {
		t.Fatalf("held by bob %d, by bob2 %d; want 1 each", len(held), len(bob2.Held()))
	}
	if o, _ := alice.Owner(ctx, "r.go"); o != "bob" {
		t.Fatalf("owner %q, want bob", o)
	}
}

// A rejected handoff whose pending form was left behind (the rejecting call
// died before deleting it) must not move claims on a later Accept.
func TestHandoffRejectedLeftoverKeepsClaims(t *testing.T) {
	srv := testenv.Start(t)
	ctx := testCtx(t, 20*time.Second)
	alice := newClient(t, srv, "alice")
	bob := newClient(t, srv, "bob")
	if _, err := alice.TryAcquire(ctx, "k.go"); err != nil {
		t.Fatal(err)
	}
	h, err := alice.Handoff(ctx, "bob", "x", "", WithClaims("k.go"))
	if err != nil {
		t.Fatal(err)
	}
	_, done, _ := bob.handoffSubjects("bob")
	st, _ := bob.handoffStream(ctx)
	pend, _, _ := bob.handoffSubjects("bob")
	stored, _, ok, err := getHandoff(ctx, st, pend+"."+h.ID)
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	stored.Status, stored.Reason, stored.DecidedAt = HandoffRejected, "no", time.Now().UTC()
	data, _ := json.Marshal(stored)
	if _, err := bob.js.Publish(ctx, done+"."+h.ID, data); err != nil {
		t.Fatal(err)
	}
	got, err := bob.Accept(ctx, h.ID)
	if !errors.Is(err, ErrHandoffDecided) || got.Status != HandoffRejected {
		t.Fatalf("Accept = %+v, %v; want the rejection and ErrHandoffDecided", got, err)
	}
	if o, _ := bob.Owner(ctx, "k.go"); o != "alice" {
		t.Fatalf("k.go owner %q, want alice (claims stay with the sender of a rejected handoff)", o)
	}
}

// A claim-carrying handoff survives a server restart and still moves the
// claims the sender kept alive across it.
func TestHandoffClaimsAcrossRestart(t *testing.T) {
	srv := testenv.Start(t)
	ctx := testCtx(t, 30*time.Second)
	alice := newClient(t, srv, "alice")
	ca, err := alice.TryAcquire(ctx, "durable.go", WithTTL(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	h, err := alice.Handoff(ctx, "bob", "x", "", WithClaims("durable.go"))
	if err != nil {
		t.Fatal(err)
	}
	srv.Restart()
	bob := newClient(t, srv, "bob")
	pending, err := bob.Handoffs(ctx, "")
	if err != nil || len(pending) != 1 || !slices.Equal(pending[0].Claims, []string{"durable.go"}) {
		t.Fatalf("pending after restart = %+v, %v", pending, err)
	}
	acc, err := bob.Accept(ctx, h.ID)
	if err != nil || len(acc.NotTransferred) != 0 {
		t.Fatalf("Accept = %+v, %v", acc, err)
	}
	if o, _ := bob.Owner(ctx, "durable.go"); o != "bob" {
		t.Fatalf("owner %q, want bob", o)
	}
	if err := ca.Release(ctx); !errors.Is(err, ErrNotOwner) {
		t.Fatalf("alice Release: %v, want ErrNotOwner", err)
	}
}
