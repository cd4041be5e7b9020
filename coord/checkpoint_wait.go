package coord

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

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

// testHookCheckpointWatching, when set (by tests, before any wait starts),
// is called once a checkpoint wait has read the arrivals made before it.
var testHookCheckpointWatching func(name string)

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

// rewatchDelay is how long a checkpoint wait waits before watching again
// after a failed attempt during a reconnect.
const rewatchDelay = 250 * time.Millisecond

// watchCheckpoint follows the arrivals at a checkpoint with one watch on
// its prefix until done(arrived) holds. Arrivals deleted by a reset leave
// the set; unreadable values are skipped. After a reconnect (a server
// restart, a failover) it watches afresh, rebuilding the set from what is
// stored, rather than waiting for the old watch to notice. On ctx's end it
// returns the set seen so far and ctx.Err() (DeadlineExceeded unwrapped,
// for the callers).
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
	reconnected := c.nc.StatusChanged(nats.CONNECTED)
	defer c.nc.RemoveStatusListener(reconnected)

	f := &checkpointFollower{c: c, user: ctx, name: name, done: done}
	for attempt := 0; ; attempt++ {
		again, err := f.follow(wctx, b, filter, reconnected, attempt > 0)
		switch {
		case !again:
			return f.seen(), err
		case wctx.Err() != nil:
			return f.seen(), c.waitEnded(ctx, name)
		case err != nil:
			// The server is not back yet: try again shortly.
			c.log.Debug().Err(err).Str("checkpoint", name).Msg("watching checkpoint again")
			t := time.NewTimer(rewatchDelay)
			select {
			case <-wctx.Done():
				t.Stop()
				return f.seen(), c.waitEnded(ctx, name)
			case <-t.C:
			}
		}
	}
}

// checkpointFollower is the state of one checkpoint wait across watches.
type checkpointFollower struct {
	c    *Client
	user context.Context // the caller's context, which says why a wait ended
	name string
	done func(map[string]bool) bool
	// arrived is the set the current watch has built; last is the set of
	// the previous watch, reported until the current one has read what
	// was stored (so a timeout during a re-watch names the right agents).
	arrived, last map[string]bool
	initial       bool
}

func (f *checkpointFollower) seen() map[string]bool {
	if !f.initial && f.last != nil {
		return f.last
	}
	return f.arrived
}

// follow runs one watch. It returns again=true when the connection came
// back (the caller watches afresh) or, on a re-watch, when the watch could
// not be made yet; otherwise the wait's outcome.
func (f *checkpointFollower) follow(ctx context.Context, b *kvstore.Bucket, filter string, reconnected <-chan nats.Status, rewatch bool) (again bool, err error) {
	c := f.c
	if f.arrived != nil {
		if f.initial {
			f.last = f.arrived
		}
		f.arrived, f.initial = nil, false
	}
	f.arrived = make(map[string]bool)
	w, err := b.Watch(ctx, []string{filter})
	if err != nil {
		if ctx.Err() != nil {
			return false, c.waitEnded(f.user, f.name)
		}
		if rewatch {
			return true, err
		}
		return false, fmt.Errorf("coord: waiting for checkpoint %q: %w", f.name, wrapNATS(err))
	}
	// Stopping the watch deletes its consumer (a round trip): do it after
	// returning, in a goroutine the client owns, so a released waiter
	// returns at once.
	defer func() {
		stopWatch := func(context.Context) {
			if err := w.Stop(); err != nil {
				c.log.Debug().Err(err).Msg("stopping checkpoint watch")
			}
		}
		if !c.goTracked(stopWatch) {
			stopWatch(nil)
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return false, c.waitEnded(f.user, f.name)
		case <-reconnected:
			return true, nil
		case raw, open := <-w.C():
			if !open {
				if ctx.Err() != nil {
					return false, c.waitEnded(f.user, f.name)
				}
				if c.ctx.Err() != nil {
					// Close ended the watch (nats.go closes it when the
					// client's context ends) before our select saw it.
					return false, fmt.Errorf("coord: waiting for checkpoint %q: %w", f.name, ErrClosed)
				}
				return false, fmt.Errorf("coord: waiting for checkpoint %q: %w: watch closed", f.name, ErrUnavailable)
			}
			f.apply(kvstore.Convert(raw))
			if f.done(f.arrived) {
				return false, nil
			}
		}
	}
}

// apply updates the arrived set with one watch event.
func (f *checkpointFollower) apply(ev kvstore.Event) {
	switch {
	case ev.InitialDone:
		f.initial = true
		if testHookCheckpointWatching != nil {
			testHookCheckpointWatching(f.name)
		}
	case ev.Live():
		agent, err := decodeArrival(ev.Key, ev.Value)
		if err != nil {
			f.c.log.Warn().Err(err).Str("key", ev.Key).Msg("skipping unreadable checkpoint arrival")
			return
		}
		f.arrived[agent] = true
	default:
		// A reset (or an operator) removed the arrival: it no longer
		// counts. Markers carry no value to decode.
		tok := ev.Key[strings.LastIndexByte(ev.Key, '.')+1:]
		if agent, err := subjects.DecodeToken(tok); err == nil {
			delete(f.arrived, agent)
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
