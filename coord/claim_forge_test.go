package coord

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cogos-dev/coord/subjects"
	"github.com/cogos-dev/coord/testenv"
)

// A grant note forged by a third party (anyone who may write waiter keys)
// must not make a waiter believe it holds a claim: the waiter checks the
// claim key itself, and its token is the real revision.
func TestForgedGrantNoteIsNotAGrant(t *testing.T) {
	srv := testenv.Start(t)
	alice := newClient(t, srv, "alice")
	bob := newClient(t, srv, "bob")
	ctx := testCtx(t, 30*time.Second)
	held, err := alice.TryAcquire(ctx, "src/x.go")
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan *Claim, 1)
	go func() {
		cl, err := bob.Acquire(ctx, "src/x.go")
		if err != nil {
			t.Errorf("bob Acquire: %v", err)
		}
		got <- cl
	}()

	// Find bob's waiter key, as a malicious agent with KV access could.
	js, err := jetstream.New(srv.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, subjects.WaitersBucket)
	if err != nil {
		t.Fatal(err)
	}
	claimKey, _, _ := subjects.ClaimKey("test", "src/x.go")
	wkey := subjects.WaiterKey(bob.ID(), claimKey)
	var e jetstream.KeyValueEntry
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if e, err = kv.Get(ctx, wkey); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("bob never queued: %v", err)
		}
	}
	var w waiterRecord
	if err := json.Unmarshal(e.Value(), &w); err != nil {
		t.Fatal(err)
	}
	note, _ := json.Marshal(wakeup{Revision: 999999, Lease: w.Lease, ClaimedAt: time.Now()})
	m := nats.NewMsg("$KV." + subjects.WaitersBucket + "." + wkey)
	m.Header.Set("KV-Operation", "DEL")
	m.Data = note
	if _, err := js.PublishMsg(ctx, m); err != nil {
		t.Fatal(err)
	}

	select {
	case cl := <-got:
		t.Fatalf("a forged note made bob the holder (token %d) while alice holds the claim", cl.Token)
	case <-time.After(time.Second):
	}
	if err := held.Release(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case cl := <-got:
		if cl.Token == 999999 || cl.Token <= held.Token {
			t.Fatalf("bob's token %d: want the claim's real revision, above alice's %d", cl.Token, held.Token)
		}
	case <-ctx.Done():
		t.Fatal("bob did not get the claim after alice released it")
	}
}
