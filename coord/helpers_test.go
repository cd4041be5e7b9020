package coord

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/cogos-dev/coord/testenv"
)

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

func testCtx(t testing.TB, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
