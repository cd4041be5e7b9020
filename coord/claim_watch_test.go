package coord

import (
	"testing"
	"time"

	"github.com/cogos-dev/coord/testenv"
)

func TestWatchReportsGrantReleaseAndExpiry(t *testing.T) {
	srv := testenv.Start(t)
	a := newClient(t, srv, "alice")
	b := newClient(t, srv, "bob")
	ctx := testCtx(t, 30*time.Second)

	w, err := b.Watch(ctx, "src")
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	defer w.Stop()
	next := func(want ClaimEventType, path string) ClaimEvent {
		t.Helper()
		for {
			select {
			case ev, ok := <-w.C():
				if !ok {
					t.Fatalf("watch closed: %v", w.Err())
				}
				if ev.Type == ClaimRenewed {
					continue
				}
				if ev.Type != want || ev.Path != path {
					t.Fatalf("event %s %s, want %s %s", ev.Type, ev.Path, want, path)
				}
				return ev
			case <-ctx.Done():
				t.Fatalf("no %s event for %s", want, path)
			}
		}
	}
	cl, err := a.TryAcquire(ctx, "src/a.go")
	if err != nil {
		t.Fatal(err)
	}
	if ev := next(ClaimGranted, "src/a.go"); ev.Claim.Agent != "alice" || ev.Claim.Token != cl.Token {
		t.Fatalf("granted event %+v, want alice token %d", ev.Claim, cl.Token)
	}
	if _, err := a.TryAcquire(ctx, "other/x.go"); err != nil {
		t.Fatal(err)
	}
	if err := cl.Release(ctx); err != nil {
		t.Fatal(err)
	}
	next(ClaimReleased, "src/a.go")

	c := newClient(t, srv, "carol")
	if _, err := c.TryAcquire(ctx, "src/b.go", WithTTL(time.Second)); err != nil {
		t.Fatal(err)
	}
	next(ClaimGranted, "src/b.go")
	c.Close() // stops renewing: the lease runs out
	ev := next(ClaimExpired, "src/b.go")
	if ev.Claim.Agent != "carol" {
		t.Fatalf("expired event names %q, want carol", ev.Claim.Agent)
	}
	// Nothing else happened: no further (non-renewal) events.
	select {
	case ev := <-w.C():
		if ev.Type != ClaimRenewed {
			t.Fatalf("unexpected event %s %s", ev.Type, ev.Path)
		}
	case <-time.After(2500 * time.Millisecond):
	}
}
