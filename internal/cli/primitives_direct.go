package cli

import (
	"context"
	"time"

	"github.com/cogos-dev/coord/coord"
	"github.com/cogos-dev/coord/internal/sidecar"
)

func (d *directBackend) publish(ctx context.Context, channel, message string) (coord.Broadcast, error) {
	return d.c.Publish(ctx, channel, message)
}

func (d *directBackend) broadcasts(ctx context.Context, channel string, since time.Duration) ([]coord.Broadcast, error) {
	return d.c.Broadcasts(ctx, channel, since)
}

func (d *directBackend) follow(ctx context.Context, channel string, since time.Duration, f func(coord.Broadcast) error) error {
	sub, err := d.c.Subscribe(ctx, channel)
	if err != nil {
		return err
	}
	defer sub.Stop()
	var last uint64
	if since > 0 {
		hist, err := d.c.Broadcasts(ctx, channel, since)
		if err != nil {
			return err
		}
		for _, b := range hist {
			last = b.Seq
			if err := f(b); err != nil {
				return err
			}
		}
	}
	for b := range sub.C() {
		if b.Seq <= last {
			continue
		}
		last = b.Seq
		if err := f(b); err != nil {
			return err
		}
	}
	if ctx.Err() != nil {
		return nil
	}
	return sub.Err()
}

func (d *directBackend) handoff(ctx context.Context, req sidecar.HandoffRequest) (coord.Handoff, error) {
	var opts []coord.HandoffOption
	if len(req.Claims) > 0 {
		opts = append(opts, coord.WithClaims(req.Claims...))
	}
	return d.c.Handoff(ctx, req.To, req.Artifact, req.Message, opts...)
}

func (d *directBackend) handoffs(ctx context.Context, agent string) ([]coord.Handoff, error) {
	return d.c.Handoffs(ctx, agent)
}

func (d *directBackend) accept(ctx context.Context, id string) (coord.Handoff, error) {
	return d.c.Accept(ctx, id)
}

func (d *directBackend) arrive(ctx context.Context, name string) (sidecar.CheckpointResponse, error) {
	if err := d.c.Arrive(ctx, name); err != nil {
		return sidecar.CheckpointResponse{}, err
	}
	arrived, err := d.c.Arrivals(ctx, name)
	return sidecar.CheckpointResponse{Name: name, Agent: d.c.Agent(), Arrived: arrived}, err
}

func (d *directBackend) wait(ctx context.Context, name string, agents []string, count int, timeout time.Duration) (sidecar.CheckpointResponse, error) {
	wctx := ctx
	if timeout > 0 {
		var cancel context.CancelFunc
		wctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	if count > 0 {
		arrived, err := d.c.WaitCheckpointCount(wctx, name, count)
		return sidecar.CheckpointResponse{Name: name, Arrived: arrived}, err
	}
	if err := d.c.WaitCheckpoint(wctx, name, agents); err != nil {
		return sidecar.CheckpointResponse{}, err
	}
	arrived, err := d.c.Arrivals(ctx, name)
	return sidecar.CheckpointResponse{Name: name, Arrived: arrived}, err
}
