package cli

import (
	"context"

	"github.com/cogos-dev/coord/coord"
	"github.com/cogos-dev/coord/internal/sidecar"
)

// directBackend talks to NATS with a coord.Client of its own. Claims it
// makes are not released when the CLI exits: they expire after their TTL.
type directBackend struct{ c *coord.Client }

func (d *directBackend) viaSidecar() string { return "" }

func (d *directBackend) close() { d.c.Close() }

func (d *directBackend) claim(ctx context.Context, a claimArgs) (coord.Claim, error) {
	opts := []coord.ClaimOption{coord.WithReason(a.reason)}
	if a.ttl > 0 {
		opts = append(opts, coord.WithTTL(a.ttl))
	}
	var (
		cl  *coord.Claim
		err error
	)
	if a.wait {
		if a.timeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, a.timeout)
			defer cancel()
		}
		cl, err = d.c.Acquire(ctx, a.path, opts...)
	} else {
		cl, err = d.c.TryAcquire(ctx, a.path, opts...)
	}
	if err != nil {
		return coord.Claim{}, err
	}
	return *cl, nil
}

func (d *directBackend) release(ctx context.Context, path string) error {
	return d.c.ReleasePath(ctx, path)
}

func (d *directBackend) owner(ctx context.Context, path string) (coord.Claim, error) {
	return d.c.Get(ctx, path)
}

func (d *directBackend) claims(ctx context.Context) ([]coord.Claim, error) {
	return d.c.List(ctx)
}

func (d *directBackend) status(ctx context.Context) (*sidecar.Status, error) {
	return sidecar.CollectStatus(ctx, d.c)
}
