package coord

import (
	"errors"
	"testing"
	"time"

	"github.com/cogos-dev/coord/testenv"
)

func TestClaimSmoke(t *testing.T) {
	srv := testenv.Start(t)
	a := newClient(t, srv, "alice")
	b := newClient(t, srv, "bob")
	ctx := testCtx(t, 20*time.Second)

	ca, err := a.TryAcquire(ctx, "src/main.go", WithReason("edit"))
	if err != nil {
		t.Fatalf("alice TryAcquire: %v", err)
	}
	_, err = b.TryAcquire(ctx, "src/main.go")
	var ce *ClaimedError
	if !errors.As(err, &ce) || ce.Owner != "alice" {
		t.Fatalf("bob TryAcquire: got %v, want ClaimedError owner alice", err)
	}
	done := make(chan *Claim)
	go func() {
		cb, err := b.Acquire(ctx, "src/main.go")
		if err != nil {
			t.Errorf("bob Acquire: %v", err)
		}
		done <- cb
	}()
	time.Sleep(200 * time.Millisecond)
	if err := ca.Release(ctx); err != nil {
		t.Fatalf("release: %v", err)
	}
	start := time.Now()
	cb := <-done
	t.Logf("handoff took %v, tokens %d -> %d", time.Since(start), ca.Token, cb.Token)
	if cb.Token <= ca.Token {
		t.Fatalf("token did not increase")
	}
	if err := ca.Release(ctx); err != nil {
		t.Fatalf("second release of a released claim: %v", err)
	}
	if err := a.ReleasePath(ctx, "src/main.go"); !errors.Is(err, ErrNotOwner) {
		t.Fatalf("alice ReleasePath of bob's: %v", err)
	}
	list, err := a.List(ctx)
	if err != nil || len(list) != 1 || list[0].Agent != "bob" {
		t.Fatalf("list: %v %+v", err, list)
	}
}
