package coord

import (
	"context"
	"testing"
	"time"

	"github.com/cogos-dev/coord/testenv"
)

func TestAcquireWaitAcrossServerRestart(t *testing.T) {
	srv := testenv.Start(t)
	a := newClient(t, srv, "alice")
	b := newClient(t, srv, "bob")
	ctx := testCtx(t, 30*time.Second)
	ca, err := a.TryAcquire(ctx, "x")
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan time.Time, 1)
	go func() {
		if _, err := b.Acquire(ctx, "x"); err != nil {
			t.Errorf("acquire: %v", err)
		}
		got <- time.Now()
	}()
	time.Sleep(300 * time.Millisecond)
	srv.Restart()
	time.Sleep(500 * time.Millisecond)
	start := time.Now()
	if err := ca.Release(ctx); err != nil {
		t.Fatal(err)
	}
	at := <-got
	t.Logf("acquired %v after release", at.Sub(start))
	if at.Sub(start) > time.Second {
		t.Fatalf("too slow: %v", at.Sub(start))
	}
}

func TestClaimWatchAcrossServerRestart(t *testing.T) {
	srv := testenv.Start(t)
	a := newClient(t, srv, "alice")
	ctx := testCtx(t, 30*time.Second)
	w, err := a.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	srv.Restart()
	// Wait until the client is connected again, then claim.
	for !a.Conn().IsConnected() {
		time.Sleep(10 * time.Millisecond)
	}
	start := time.Now()
	if err := afterRestart(ctx, func(ctx context.Context) error { _, err := a.TryAcquire(ctx, "after/restart"); return err }); err != nil {
		t.Fatal(err)
	}
	for {
		select {
		case ev := <-w.C():
			if ev.Type == ClaimGranted && ev.Path == "after/restart" {
				if d := time.Since(start); d > 3*time.Second {
					t.Fatalf("grant reported %v after the claim", d)
				}
				return
			}
		case <-ctx.Done():
			t.Fatalf("no grant event after restart: %v", w.Err())
		}
	}
}
