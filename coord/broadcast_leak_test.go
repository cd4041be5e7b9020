package coord

import (
	"context"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/cogos-dev/coord/testenv"
)

// TestCloseLeavesNoGoroutines: after Close returns, no goroutine of this
// package's feeds or checkpoint waits is left running.
func TestCloseLeavesNoGoroutines(t *testing.T) {
	srv := testenv.Start(t)
	c := newClient(t, srv, "alice")
	ctx := testCtx(t, 20*time.Second)
	for range 3 {
		if _, err := c.Subscribe(ctx, "news"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Publish(ctx, "news", "hi"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Broadcasts(ctx, "news", 0); err != nil {
		t.Fatal(err)
	}
	waits := make(chan error, 2)
	go func() { waits <- c.WaitCheckpoint(context.Background(), "cp", []string{"nobody"}) }()
	go func() {
		_, err := c.WaitCheckpointCount(context.Background(), "cp", 5)
		waits <- err
	}()
	time.Sleep(200 * time.Millisecond)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		select {
		case <-waits:
		case <-time.After(5 * time.Second):
			t.Fatal("a checkpoint wait outlived Close")
		}
	}
	buf := make([]byte, 1<<20)
	stacks := string(buf[:runtime.Stack(buf, true)])
	for _, fn := range []string{"coord.(*Subscription).run", "coord.(*Client).watchCheckpoint", "coord.(*checkpointFollower)"} {
		if strings.Contains(stacks, fn) {
			t.Errorf("goroutine in %s still running after Close:\n%s", fn, stacks)
		}
	}
}
