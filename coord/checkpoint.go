package coord

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cogos-dev/coord/kvstore"
	"github.com/cogos-dev/coord/subjects"
)

// arrival is the stored value of one agent's arrival at a checkpoint.
type arrival struct {
	Agent     string    `json:"agent"`
	ArrivedAt time.Time `json:"arrived_at"`
}

// checkpointBucket returns the checkpoints bucket, creating it on first use.
func (c *Client) checkpointBucket(ctx context.Context) (*kvstore.Bucket, error) {
	return c.lazy.checkpoints.get(func() (*kvstore.Bucket, error) {
		return c.ensureBucket(ctx, kvstore.BucketConfig{
			Name:        subjects.CheckpointsBucket,
			Description: "coord checkpoints: <namespace>.<checkpoint>.<agent> -> arrival (JSON)",
			MarkerTTL:   time.Minute,
		})
	})
}

// Arrive records that this client's agent reached checkpoint name. It is
// idempotent: arriving again (from any client of the same agent) changes
// nothing. Arrivals are durable until ResetCheckpoint.
func (c *Client) Arrive(ctx context.Context, name string) error {
	key, err := subjects.CheckpointKey(c.opts.namespace, name, c.opts.agent)
	if err != nil {
		return err
	}
	if c.isClosed() {
		return ErrClosed
	}
	b, err := c.checkpointBucket(ctx)
	if err != nil {
		return err
	}
	val, err := json.Marshal(arrival{Agent: c.opts.agent, ArrivedAt: time.Now().UTC()})
	if err != nil {
		return fmt.Errorf("coord: encoding arrival: %w", err)
	}
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	for attempt := 0; ; attempt++ {
		_, err = b.Create(ctx, key, val, 0)
		var exists *kvstore.ExistsError
		if !errors.As(err, &exists) {
			break
		}
		if _, bad := decodeArrival(exists.Entry.Key, exists.Entry.Value); bad == nil {
			return nil // arrived before
		}
		// The key holds something unreadable (written by hand), which
		// waiters skip: replace it, or this arrival would never count.
		c.log.Warn().Str("key", key).Msg("replacing unreadable checkpoint arrival")
		_, err = b.Update(ctx, key, val, exists.Entry.Revision, 0)
		if !errors.Is(err, kvstore.ErrRevisionMismatch) || attempt == 2 {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("coord: arriving at checkpoint %q: %w", name, wrapNATS(err))
	}
	return nil
}

// Arrivals lists the agents that have arrived at checkpoint name, sorted.
func (c *Client) Arrivals(ctx context.Context, name string) ([]string, error) {
	filter, err := subjects.CheckpointFilter(c.opts.namespace, name)
	if err != nil {
		return nil, err
	}
	if c.isClosed() {
		return nil, ErrClosed
	}
	b, err := c.checkpointBucket(ctx)
	if err != nil {
		return nil, err
	}
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	entries, err := b.List(ctx, filter)
	if err != nil {
		return nil, fmt.Errorf("coord: listing checkpoint %q: %w", name, wrapNATS(err))
	}
	agents := make([]string, 0, len(entries))
	for _, e := range entries {
		agent, err := decodeArrival(e.Key, e.Value)
		if err != nil {
			c.log.Warn().Err(err).Str("key", e.Key).Msg("skipping unreadable checkpoint arrival")
			continue
		}
		agents = append(agents, agent)
	}
	slices.Sort(agents)
	return agents, nil
}

// decodeArrival checks a stored arrival and returns its agent. The key's
// last token is the agent; the value must name the same agent.
func decodeArrival(key string, value []byte) (string, error) {
	tok := key[strings.LastIndexByte(key, '.')+1:]
	agent, err := subjects.DecodeToken(tok)
	if err != nil {
		return "", fmt.Errorf("%w: arrival key %q: %w", ErrBadValue, key, err)
	}
	if subjects.EncodeToken(agent) != tok {
		return "", fmt.Errorf("%w: arrival key %q is not canonical", ErrBadValue, key)
	}
	var a arrival
	if err := json.Unmarshal(value, &a); err != nil {
		return "", fmt.Errorf("%w: arrival %q: %w", ErrBadValue, key, err)
	}
	if a.Agent != agent {
		return "", fmt.Errorf("%w: arrival %q names agent %q", ErrBadValue, key, a.Agent)
	}
	return agent, nil
}

// ResetCheckpoint deletes every arrival at checkpoint name, so the name
// can be used for the next round. Waiters still waiting see the arrivals
// leave. Arrivals made while the reset runs may survive it.
func (c *Client) ResetCheckpoint(ctx context.Context, name string) error {
	filter, err := subjects.CheckpointFilter(c.opts.namespace, name)
	if err != nil {
		return err
	}
	if c.isClosed() {
		return ErrClosed
	}
	b, err := c.checkpointBucket(ctx)
	if err != nil {
		return err
	}
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	entries, err := b.List(ctx, filter)
	if err != nil {
		return fmt.Errorf("coord: resetting checkpoint %q: %w", name, wrapNATS(err))
	}
	for _, e := range entries {
		// Revision-checked: an entry that moved on was already removed by
		// a concurrent reset (an arrival never overwrites a live key).
		// Another agent's arrival outside this user's permissions is
		// refused at once (ErrPermissionDenied), not after the deadline.
		pctx, done := c.refusable(ctx, "$KV."+subjects.CheckpointsBucket+"."+e.Key)
		_, err := b.Delete(pctx, e.Key, e.Revision)
		err = refusedErr(pctx, err)
		done()
		if err != nil && !errors.Is(err, kvstore.ErrRevisionMismatch) {
			return fmt.Errorf("coord: resetting checkpoint %q: %w", name, wrapNATS(err))
		}
	}
	return nil
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
