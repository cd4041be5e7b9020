package sidecar

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/cogos-dev/coord/coord"
)

// errShuttingDown answers requests that arrive while the sidecar stops.
var errShuttingDown = errors.New("sidecar: shutting down")

// agents keeps one coord.Client per (namespace, agent) that has used the
// sidecar, all on the sidecar's NATS connection. A client lives until the
// sidecar stops: it renews the claims it holds.
type agents struct {
	nc       *nats.Conn
	claimTTL time.Duration
	replicas int
	log      zerolog.Logger

	mu      sync.Mutex
	clients map[agentKey]*coord.Client
	closed  bool
}

type agentKey struct{ ns, agent string }

func newAgents(nc *nats.Conn, ttl time.Duration, replicas int, log zerolog.Logger) *agents {
	return &agents{nc: nc, claimTTL: ttl, replicas: replicas, log: log, clients: make(map[agentKey]*coord.Client)}
}

// get returns the agent's client, creating it on first use.
func (a *agents) get(ctx context.Context, ns, agent string) (*coord.Client, error) {
	k := agentKey{ns, agent}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return nil, errShuttingDown
	}
	if c := a.clients[k]; c != nil {
		return c, nil
	}
	// Creating a client provisions the claim buckets: a few round trips,
	// done under the lock so two first requests of an agent make one client.
	c, err := coord.New(ctx,
		coord.WithConn(a.nc),
		coord.WithAgent(agent),
		coord.WithNamespace(ns),
		coord.WithClaimTTL(a.claimTTL),
		coord.WithReplicas(a.replicas),
		coord.WithLogger(a.log),
	)
	if err != nil {
		return nil, err
	}
	a.clients[k] = c
	a.log.Info().Str("agent", agent).Str("ns", ns).Msg("agent joined")
	return c, nil
}

// held lists the claims the sidecar keeps alive, for all agents.
func (a *agents) held() []coord.Claim {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []coord.Claim
	for _, c := range a.clients {
		for _, cl := range c.Held() {
			out = append(out, *cl)
		}
	}
	return out
}

// releaseAll releases every claim held by every client, then closes them.
// Later get calls fail with errShuttingDown.
func (a *agents) releaseAll(ctx context.Context) error {
	a.mu.Lock()
	a.closed = true
	clients := make([]*coord.Client, 0, len(a.clients))
	for _, c := range a.clients {
		clients = append(clients, c)
	}
	a.mu.Unlock()
	var errs []error
	for _, c := range clients {
		for _, cl := range c.Held() {
			if err := c.Release(ctx, cl); err != nil {
				errs = append(errs, fmt.Errorf("release %s for %s: %w", cl.Path, c.Agent(), err))
				continue
			}
			a.log.Info().Str("agent", c.Agent()).Str("path", cl.Path).Msg("released on shutdown")
		}
		if err := c.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
