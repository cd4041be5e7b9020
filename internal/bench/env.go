package bench

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cogos-dev/coord/coord"
	"github.com/cogos-dev/coord/subjects"
)

// env is one run: the server, the namespace, and an admin connection for
// floors and clean-up.
type env struct {
	cfg      Config
	url      string
	ns       string
	nsTok    string
	embedded bool
	// inproc, when set, is the embedded server the clients connect to
	// in-process (no socket), as the sidecar's agents do.
	inproc *server.Server
	nc     *nats.Conn
	js     jetstream.JetStream
	agents int // agent IDs handed out so far
	mu     sync.Mutex
}

func newEnv(ctx context.Context, cfg Config, url string, inproc *server.Server) (*env, error) {
	e := &env{cfg: cfg, url: url, inproc: inproc}
	nc, err := e.dial("coordbench admin")
	if err != nil {
		return nil, fmt.Errorf("bench: connecting to %s: %w", url, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("bench: %w", err)
	}
	e.ns = newNamespace()
	e.nsTok, e.nc, e.js = subjects.EncodeToken(e.ns), nc, js
	return e, nil
}

// natsOptions are the connection options of every client of the run.
func (e *env) natsOptions(name string) []nats.Option {
	opts := []nats.Option{nats.Name(name)}
	if e.inproc != nil {
		opts = append(opts, nats.InProcessServer(e.inproc))
	}
	return opts
}

// dial opens a connection to the run's server.
func (e *env) dial(name string) (*nats.Conn, error) {
	return nats.Connect(e.url, e.natsOptions(name)...)
}

// close purges the namespace and closes the admin connection.
func (e *env) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = e.purge(ctx) // best effort: the run is over; a failure was reported per scenario
	e.nc.Close()
}

// progress reports to cfg.Progress, if set.
func (e *env) progress(format string, args ...any) {
	if e.cfg.Progress != nil {
		fmt.Fprintf(e.cfg.Progress, format+"\n", args...)
	}
}

// agentID hands out a fresh agent ID.
func (e *env) agentID(prefix string) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.agents++
	return fmt.Sprintf("%s%d", prefix, e.agents)
}

// clients opens n coord clients, each with its own connection and agent ID,
// a few at a time.
func (e *env) clients(ctx context.Context, n int, prefix string, opts ...coord.Option) ([]*coord.Client, error) {
	cs := make([]*coord.Client, n)
	err := parallel(ctx, n, 16, func(ctx context.Context, i int) error {
		o := append([]coord.Option{coord.WithAgent(e.agentID(prefix)), coord.WithNamespace(e.ns),
			coord.WithNATSOptions(e.natsOptions("coordbench")...)}, opts...)
		c, err := coord.Connect(ctx, e.url, o...)
		if err != nil {
			return err
		}
		cs[i] = c
		return nil
	})
	if err != nil {
		closeAll(cs)
		return nil, fmt.Errorf("opening %d clients: %w", n, err)
	}
	return cs, nil
}

// closeAll closes clients in parallel (nil entries are skipped).
func closeAll(cs []*coord.Client) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for _, c := range cs {
		if c == nil {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			_ = c.Close() // Close has no failure worth reporting in a benchmark
		}()
	}
	wg.Wait()
}

// rawConns opens n plain connections for floors.
func (e *env) rawConns(n int) ([]jetstream.JetStream, func(), error) {
	conns := make([]*nats.Conn, 0, n)
	closeConns := func() {
		for _, nc := range conns {
			nc.Close()
		}
	}
	out := make([]jetstream.JetStream, 0, n)
	for range n {
		nc, err := e.dial("coordbench floor")
		if err != nil {
			closeConns()
			return nil, nil, fmt.Errorf("connecting: %w", err)
		}
		conns = append(conns, nc)
		js, err := jetstream.New(nc)
		if err != nil {
			closeConns()
			return nil, nil, err
		}
		out = append(out, js)
	}
	return out, closeConns, nil
}

// purge removes everything this run wrote from the coord buckets and
// streams (they may be shared with other users of an external server).
func (e *env) purge(ctx context.Context) error {
	targets := []struct{ stream, filter string }{
		{"KV_" + subjects.ClaimsBucket, "$KV." + subjects.ClaimsBucket + "." + e.nsTok + ".>"},
		{"KV_" + subjects.WaitersBucket, "$KV." + subjects.WaitersBucket + ".*." + e.nsTok + ".>"},
		{"KV_" + subjects.CheckpointsBucket, "$KV." + subjects.CheckpointsBucket + "." + e.nsTok + ".>"},
		{subjects.BroadcastStream, subjects.BroadcastPrefix + "." + e.nsTok + ".>"},
		{subjects.HandoffStream, subjects.HandoffPrefix + "." + e.nsTok + ".>"},
		{subjects.HandoffStream, coord.HandoffDonePrefix + "." + e.nsTok + ".>"},
	}
	var errs []error
	for _, t := range targets {
		st, err := e.js.Stream(ctx, t.stream)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			continue
		}
		if err == nil {
			err = st.Purge(ctx, jetstream.WithPurgeSubject(t.filter))
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("bench: purging %s %s: %w", t.stream, t.filter, err))
		}
	}
	return errors.Join(errs...)
}

// claimSubject is the KV subject of path's claim key in this namespace.
func (e *env) claimSubject(path string) (string, error) {
	key, _, err := subjects.ClaimKey(e.ns, path)
	if err != nil {
		return "", err
	}
	return "$KV." + subjects.ClaimsBucket + "." + key, nil
}

// parallel runs f(i) for i in [0,n) with at most width at once; the first
// error cancels the rest and is returned.
func parallel(ctx context.Context, n, width int, f func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	next := make(chan int)
	for range min(width, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if ctx.Err() != nil {
					continue
				}
				if err := f(ctx, i); err != nil {
					cancel(err)
				}
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return ctx.Err()
}
