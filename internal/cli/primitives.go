package cli

import (
	"context"
	"time"

	"github.com/cogos-dev/coord/coord"
	"github.com/cogos-dev/coord/internal/sidecar"
)

// primitives are the backend calls for broadcasts, handoffs and
// checkpoints.
type primitives interface {
	publish(ctx context.Context, channel, message string) (coord.Broadcast, error)
	broadcasts(ctx context.Context, channel string, since time.Duration) ([]coord.Broadcast, error)
	// follow calls f with the window's messages (since > 0), then live
	// ones, until ctx ends or f returns an error.
	follow(ctx context.Context, channel string, since time.Duration, f func(coord.Broadcast) error) error
	handoff(ctx context.Context, req sidecar.HandoffRequest) (coord.Handoff, error)
	handoffs(ctx context.Context, agent string) ([]coord.Handoff, error)
	accept(ctx context.Context, id string) (coord.Handoff, error)
	arrive(ctx context.Context, name string) (sidecar.CheckpointResponse, error)
	wait(ctx context.Context, name string, agents []string, count int, timeout time.Duration) (sidecar.CheckpointResponse, error)
}
