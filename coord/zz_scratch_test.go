package coord

import (
	"context"
	"fmt"
	"github.com/nats-io/nats.go"
	"os"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/cogos-dev/coord/testenv"
)

func TestScratchContended(t *testing.T) {
	srv := testenv.Start(t)
	const n = 16
	cls := make([]*Client, n)
	for i := range cls {
		if os.Getenv("INPROC") != "" {
			cls[i] = newClient(t, srv, fmt.Sprintf("agent%d", i), WithNATSOptions(nats.InProcessServer(srv.NATS())))
		} else {
			cls[i] = newClient(t, srv, fmt.Sprintf("agent%d", i))
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	var mu sync.Mutex
	var waits []time.Duration
	turns := make([]int, n)
	v0, _ := srv.NATS().Varz(nil)
	var wg sync.WaitGroup
	for i := range cls {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for ctx.Err() == nil {
				s := time.Now()
				cl, err := cls[i].Acquire(ctx, "hot")
				if err != nil {
					return
				}
				d := time.Since(s)
				mu.Lock()
				waits = append(waits, d)
				turns[i]++
				mu.Unlock()
				rctx, c2 := context.WithTimeout(context.Background(), 5*time.Second)
				if err := cl.Release(rctx); err != nil {
					t.Errorf("release: %v", err)
				}
				c2()
			}
		}(i)
	}
	wg.Wait()
	v1, _ := srv.NATS().Varz(nil)
	t.Logf("server in msgs per transfer: %.1f, out msgs per transfer: %.1f", float64(v1.InMsgs-v0.InMsgs)/float64(len(waits)), float64(v1.OutMsgs-v0.OutMsgs)/float64(len(waits)))
	sort.Slice(waits, func(a, b int) bool { return waits[a] < waits[b] })
	mn, sum := 1<<30, 0
	for _, x := range turns {
		sum += x
		mn = min(mn, x)
	}
	t.Logf("ops=%d/s p50=%v p99=%v fairness=%.2f turns=%v", len(waits)/3, waits[len(waits)/2], waits[len(waits)*99/100], float64(mn)/(float64(sum)/n), turns)
}
