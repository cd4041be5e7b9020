package coord

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/goleak"

	"github.com/cogos-dev/coord/testenv"
)

// TestMain fails the package if any goroutine (a client's keeper, watch
// dispatcher or renewal, or a server's) outlives the tests that started it.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// newClient starts a client for agent on srv, closed when the test ends.
func newClient(t testing.TB, srv *testenv.Server, agent string, opts ...Option) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	base := []Option{WithURL(srv.URL()), WithAgent(agent), WithNamespace("test"),
		WithNATSOptions(nats.ReconnectWait(20 * time.Millisecond))}
	c, err := New(ctx, append(base, opts...)...)
	if err != nil {
		t.Fatalf("New(%s): %v", agent, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// newConnClient starts a client for agent over a shared connection nc
// (WithConn), closed when the test ends.
func newConnClient(t testing.TB, nc *nats.Conn, agent string, opts ...Option) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	base := []Option{WithConn(nc), WithAgent(agent), WithNamespace("test")}
	c, err := New(ctx, append(base, opts...)...)
	if err != nil {
		t.Fatalf("New(%s): %v", agent, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func testCtx(t testing.TB, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// eventually waits (bounded) for cond, polling: a test helper, not library code.
func eventually(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not true within %v", what, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// turns counts acquisitions per agent, for fairness checks.
type turns struct {
	mu sync.Mutex
	n  map[string]int
}

func (s *turns) add(agent string) {
	s.mu.Lock()
	if s.n == nil {
		s.n = make(map[string]int)
	}
	s.n[agent]++
	s.mu.Unlock()
}

// fairness returns min, mean and min/mean over want agents (an agent with
// no turn counts as zero).
func (s *turns) fairness(agents []string) (minTurns int, mean, ratio float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	total := 0
	minTurns = -1
	for _, a := range agents {
		n := s.n[a]
		total += n
		if minTurns < 0 || n < minTurns {
			minTurns = n
		}
	}
	mean = float64(total) / float64(len(agents))
	if mean > 0 {
		ratio = float64(minTurns) / mean
	}
	return minTurns, mean, ratio
}
