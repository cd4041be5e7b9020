package coord

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cogos-dev/coord/testenv"
)

// TestClaimMutualExclusionInBursts: 16 agents, each its own client, start
// blocking Acquires on one path at the same moment, hold for no time and
// go again, round after round. Every round starts with the queue empty, so
// releases race with waiters queueing: holders find no waiter and delete
// the claim, then nudge the waiter that queued meanwhile, while the next
// holder hands the claim to that waiter's (now stale) key. No two agents
// may hold at once, and every release must find its claim still held.
func TestClaimMutualExclusionInBursts(t *testing.T) {
	srv := testenv.Start(t)
	const agents, perRound = 16, 2
	clients := make([]*Client, agents)
	for i := range clients {
		clients[i] = newClient(t, srv, fmt.Sprintf("burst-%02d", i), WithClaimTTL(30*time.Second))
	}
	ctx := testCtx(t, 60*time.Second)
	var (
		holder    atomic.Int64
		grants    atomic.Int64
		violation atomic.Value
	)
	fail := func(format string, a ...any) { violation.CompareAndSwap(nil, fmt.Sprintf(format, a...)) }
	stop := time.Now().Add(2 * time.Second)
	rounds := 0
	for ; time.Now().Before(stop) && violation.Load() == nil; rounds++ {
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i, c := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				for range perRound {
					cl, err := c.Acquire(ctx, "burst/hot")
					if err != nil {
						fail("agent %d acquire: %v", i, err)
						return
					}
					if prev := holder.Swap(int64(i + 1)); prev != 0 {
						fail("agent %d got the claim while agent %d held it", i, prev-1)
					}
					grants.Add(1)
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
		close(start)
		wg.Wait()
	}
	if v := violation.Load(); v != nil {
		t.Fatalf("round %d: %v", rounds, v)
	}
	t.Logf("%d rounds, %d grants", rounds, grants.Load())
	if grants.Load() < int64(agents*perRound) {
		t.Fatalf("only %d grants", grants.Load())
	}
}
