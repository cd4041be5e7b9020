package bench

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cogos-dev/coord/subjects"
)

// contendedFloor is the best a hand-over can do on this server: one write
// and one notification per transfer. n raw connections each watch their own
// key; the holder "releases" by writing the next one's key, which wakes it
// (a perfectly fair token ring). It returns the hand-overs and their
// latency (write sent -> next holder woken).
func contendedFloor(ctx context.Context, e *env, n int, d time.Duration) (stats, error) {
	jss, closeRaw, err := e.rawConns(n)
	if err != nil {
		return stats{}, err
	}
	defer closeRaw()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	kvs := make([]jetstream.KeyValue, n)
	keys := make([]string, n)
	watchers := make([]jetstream.KeyWatcher, n)
	for i, js := range jss {
		if kvs[i], err = js.KeyValue(ctx, subjects.ClaimsBucket); err != nil {
			return stats{}, err
		}
		keys[i] = fmt.Sprintf("%s.floor-ring-%d.%d", e.nsTok, n, i)
		if watchers[i], err = kvs[i].Watch(ctx, keys[i], jetstream.UpdatesOnly()); err != nil {
			return stats{}, err
		}
		defer watchers[i].Stop()
	}
	lats := make([][]time.Duration, n)
	errs := make([]error, n)
	start := time.Now() // set before the workers start: they read it
	var wg sync.WaitGroup
	var stopOnce sync.Once
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-ctx.Done():
					return
				case en := <-watchers[i].Updates():
					if en == nil {
						continue
					}
					now := time.Now()
					sent, err := strconv.ParseInt(string(en.Value()), 10, 64)
					if err != nil {
						errs[i] = err
						cancel()
						return
					}
					lats[i] = append(lats[i], now.Sub(time.Unix(0, sent)))
					if now.After(start.Add(d)) {
						stopOnce.Do(cancel)
						return
					}
					next := (i + 1) % n
					if _, err := kvs[i].Put(ctx, keys[next], []byte(strconv.FormatInt(time.Now().UnixNano(), 10))); err != nil && ctx.Err() == nil {
						errs[i] = err
						cancel()
						return
					}
				}
			}
		}()
	}
	if _, err := kvs[0].Put(ctx, keys[0], []byte(strconv.FormatInt(time.Now().UnixNano(), 10))); err != nil {
		cancel()
		wg.Wait()
		return stats{}, err
	}
	wg.Wait()
	elapsed := time.Since(start)
	for _, err := range errs {
		if err != nil {
			return stats{}, err
		}
	}
	var all []time.Duration
	for _, l := range lats {
		all = append(all, l...)
	}
	return summarize(all, elapsed), nil
}
