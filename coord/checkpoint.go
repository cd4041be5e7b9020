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

// CheckpointTimeoutError is returned by WaitCheckpoint and
// WaitCheckpointCount when their context's deadline passes first. It names
// the agents still missing (for WaitCheckpoint) and those that had arrived.
// errors.Is(err, ErrTimeout) and errors.Is(err, context.DeadlineExceeded)
// are both true.
type CheckpointTimeoutError struct {
	Name    string
	Missing []string
	Arrived []string

	want int // WaitCheckpointCount's n; 0 for WaitCheckpoint
}

func (e *CheckpointTimeoutError) Error() string {
	arrived := "none"
	if len(e.Arrived) > 0 {
		arrived = strings.Join(e.Arrived, ", ")
	}
	if e.want > 0 {
		return fmt.Sprintf("coord: checkpoint %q timed out with %d of %d agents arrived (arrived: %s)",
			e.Name, len(e.Arrived), e.want, arrived)
	}
	return fmt.Sprintf("coord: checkpoint %q timed out waiting for %s (arrived: %s)",
		e.Name, strings.Join(e.Missing, ", "), arrived)
}

// Is makes errors.Is(err, ErrTimeout) true.
func (e *CheckpointTimeoutError) Is(target error) bool { return target == ErrTimeout }

// Unwrap makes errors.Is(err, context.DeadlineExceeded) true.
func (e *CheckpointTimeoutError) Unwrap() error { return context.DeadlineExceeded }

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
	_, err = b.Create(ctx, key, val, 0)
	if err != nil && !errors.Is(err, kvstore.ErrKeyExists) {
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

// WaitCheckpoint blocks until every agent in agents has arrived at
// checkpoint name, counting arrivals made before the call. It watches the
// checkpoint (no polling) and returns as soon as the last one arrives.
// When ctx's deadline passes first it returns a *CheckpointTimeoutError
// naming the missing agents; when ctx is cancelled, ctx.Err() wrapped; when
// the client is closed, ErrClosed. An empty agents list returns at once.
// A wait without a deadline waits until cancelled.
func (c *Client) WaitCheckpoint(ctx context.Context, name string, agents []string) error {
	if err := subjects.ValidateName(name); err != nil {
		return err
	}
	want := make(map[string]bool, len(agents))
	for _, a := range agents {
		if err := subjects.ValidateAgent(a); err != nil {
			return err
		}
		want[a] = true
	}
	if len(want) == 0 {
		return nil
	}
	arrived, err := c.watchCheckpoint(ctx, name, func(arrived map[string]bool) bool {
		for a := range want {
			if !arrived[a] {
				return false
			}
		}
		return true
	})
	if err == nil {
		return nil
	}
	if errors.Is(err, context.DeadlineExceeded) {
		te := &CheckpointTimeoutError{Name: name, Arrived: sortedKeys(arrived)}
		for a := range want {
			if !arrived[a] {
				te.Missing = append(te.Missing, a)
			}
		}
		slices.Sort(te.Missing)
		return te
	}
	return err
}

// WaitCheckpointCount blocks until at least n distinct agents have arrived
// at checkpoint name and returns them, sorted. Timeouts and cancellation
// are reported as by WaitCheckpoint. n must be at least 1.
func (c *Client) WaitCheckpointCount(ctx context.Context, name string, n int) ([]string, error) {
	if err := subjects.ValidateName(name); err != nil {
		return nil, err
	}
	if n < 1 {
		return nil, fmt.Errorf("%w: checkpoint count %d (want at least 1)", ErrInvalidOption, n)
	}
	arrived, err := c.watchCheckpoint(ctx, name, func(arrived map[string]bool) bool {
		return len(arrived) >= n
	})
	if err == nil {
		return sortedKeys(arrived), nil
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return nil, &CheckpointTimeoutError{Name: name, Arrived: sortedKeys(arrived), want: n}
	}
	return nil, err
}

// watchCheckpoint follows the arrivals at a checkpoint with one watch on
// its prefix until done(arrived) holds. Arrivals deleted by a reset leave
// the set; unreadable values are skipped. On ctx's end it returns the set
// seen so far and ctx.Err() (DeadlineExceeded unwrapped, for the callers).
func (c *Client) watchCheckpoint(ctx context.Context, name string, done func(map[string]bool) bool) (map[string]bool, error) {
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
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(c.ctx, cancel)
	defer stop()
	w, err := b.Watch(wctx, []string{filter})
	if err != nil {
		if ctx.Err() != nil {
			return nil, c.waitEnded(ctx, name)
		}
		return nil, fmt.Errorf("coord: waiting for checkpoint %q: %w", name, wrapNATS(err))
	}
	defer func() {
		if err := w.Stop(); err != nil {
			c.log.Debug().Err(err).Msg("stopping checkpoint watch")
		}
	}()
	arrived := make(map[string]bool)
	for {
		select {
		case <-wctx.Done():
			return arrived, c.waitEnded(ctx, name)
		case raw, open := <-w.C():
			if !open {
				if wctx.Err() != nil {
					return arrived, c.waitEnded(ctx, name)
				}
				return arrived, fmt.Errorf("coord: waiting for checkpoint %q: %w: watch closed", name, ErrUnavailable)
			}
			ev := kvstore.Convert(raw)
			switch {
			case ev.InitialDone:
			case ev.Live():
				agent, err := decodeArrival(ev.Key, ev.Value)
				if err != nil {
					c.log.Warn().Err(err).Str("key", ev.Key).Msg("skipping unreadable checkpoint arrival")
					continue
				}
				arrived[agent] = true
			default:
				// A reset (or an operator) removed the arrival: it no
				// longer counts. Markers carry no value to decode.
				tok := ev.Key[strings.LastIndexByte(ev.Key, '.')+1:]
				if agent, err := subjects.DecodeToken(tok); err == nil {
					delete(arrived, agent)
				}
			}
			if done(arrived) {
				return arrived, nil
			}
		}
	}
}

// waitEnded is the error of a checkpoint wait whose context (or client)
// ended: the bare DeadlineExceeded for the callers to turn into a
// *CheckpointTimeoutError, else a wrapped cancellation or ErrClosed.
func (c *Client) waitEnded(ctx context.Context, name string) error {
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return context.DeadlineExceeded
	case ctx.Err() != nil:
		return fmt.Errorf("coord: waiting for checkpoint %q: %w", name, ctx.Err())
	}
	return fmt.Errorf("coord: waiting for checkpoint %q: %w", name, ErrClosed)
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
		if _, err := b.Delete(ctx, e.Key, e.Revision); err != nil && !errors.Is(err, kvstore.ErrRevisionMismatch) {
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
