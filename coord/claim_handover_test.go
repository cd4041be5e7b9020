package coord

import (
	"encoding/json"
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
