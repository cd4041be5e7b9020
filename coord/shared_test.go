package coord

import (
	"testing"
	"time"

	"github.com/cogos-dev/coord/testenv"
)

// Clients on one connection share its claim buckets: the second client
// provisions nothing; one closing leaves the others working; the last one
// closing drops the entry, and a client made later provisions again.
func TestClientsOnOneConnectionShareBuckets(t *testing.T) {
	srv := testenv.Start(t)
	ctx := testCtx(t, 20*time.Second)
	nc := srv.Connect(t)
	a := newConnClient(t, nc, "alice")
	b := newConnClient(t, nc, "bob")
	if a.claims != b.claims || a.waiters != b.waiters {
		t.Fatal("two clients on one connection provisioned their own buckets")
	}
	k := *a.shared
	entry := func() *sharedBuckets {
		sharedMu.Lock()
		defer sharedMu.Unlock()
		return shared[k]
	}
	if s := entry(); s == nil || s.refs != 2 {
		t.Fatalf("shared entry %+v, want 2 users", s)
	}
	own := newClient(t, srv, "carol") // its own connection: its own buckets
	if own.claims == a.claims || own.shared != nil {
		t.Fatal("a client with its own connection uses a shared entry")
	}

	cl, err := a.TryAcquire(ctx, "shared/x")
	if err != nil {
		t.Fatal(err)
	}
	a.Close()
	if _, err := b.TryAcquire(ctx, "shared/y"); err != nil {
		t.Fatalf("bob after alice closed: %v", err)
	}
	if cl.Held() {
		t.Fatal("alice's claim still held after her Close")
	}
	b.Close()
	if s := entry(); s != nil {
		t.Fatalf("entry %+v left after the last client closed", s)
	}
	d := newConnClient(t, nc, "dave")
	if d.claims == b.claims {
		t.Fatal("a client made after the last one closed reused its buckets")
	}
	if _, err := d.TryAcquire(ctx, "shared/z"); err != nil {
		t.Fatalf("dave after everyone closed: %v", err)
	}
}
