package kvstore

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Requests that a cluster re-forming after a node loss or restart leaves
// unserved are sent again, until the caller's context ends, instead of
// failing at once (the caller would only retry) or hanging until the
// caller's deadline:
//
//   - no responders, and a "JetStream temporarily unavailable" (503) answer:
//     nothing was done, so any request, a write included, is safe to repeat;
//   - a read that goes unanswered: reads are idempotent, and right after a
//     node restarts a read can be dropped on the floor (the restarted server
//     is not the stream's leader and its routes are not up yet). A read's
//     first try gets firstReadAttempt, each next one twice as long, up to
//     maxReadAttempt; an answer normally takes a millisecond, so a resend
//     under load costs little. A write that goes unanswered is not repeated:
//     it may have been stored.
const (
	firstReadAttempt = 250 * time.Millisecond
	// firstWriteAttempt bounds a write's first try (see Bucket.send).
	firstWriteAttempt = time.Second
	maxReadAttempt    = 2 * time.Second
	firstRetryPause   = 25 * time.Millisecond
	maxRetryPause     = 500 * time.Millisecond
	// defaultTimeout bounds a request whose context has no deadline.
	defaultTimeout = 5 * time.Second
)

// errDirectTimeout is a direct get answered with status 408.
var errDirectTimeout = errors.New("direct get timed out")

// retry runs op until it succeeds, fails for good, or ctx ends. With
// attempt > 0 each try is bounded (attempt, then twice that, up to
// maxReadAttempt) and an unanswered try is repeated: only for reads.
// The error returned is mapped (mapError).
func retry[T any](ctx context.Context, attempt time.Duration, op func(context.Context) (T, error)) (T, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultTimeout)
		defer cancel()
	}
	pause := firstRetryPause
	for {
		actx, cancel := ctx, context.CancelFunc(func() {})
		if attempt > 0 {
			actx, cancel = context.WithTimeout(ctx, attempt)
			attempt = min(2*attempt, maxReadAttempt)
		}
		v, err := op(actx)
		cancel()
		if err == nil {
			return v, nil
		}
		unanswered := attempt > 0 && ctx.Err() == nil &&
			(errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout))
		if ctx.Err() != nil || !(unanswered || transient(err)) || !sleep(ctx, pause) {
			return v, mapError(err)
		}
		pause = min(2*pause, maxRetryPause)
	}
}

// transient reports errors that say a request was not acted on because
// JetStream could not serve it just now.
func transient(err error) bool {
	if errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoStreamResponse) ||
		errors.Is(err, errDirectTimeout) {
		return true
	}
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.Code == 503 || apiErr.ErrorCode == codeJetStreamUnavailable)
}

// sleep waits d, or less if ctx ends first (then it reports false).
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// Publish sends a message to a stream the way Bucket writes are sent: each
// try bounded (firstWriteAttempt, doubling), and sent again while tries go
// unanswered or are refused as unavailable, until ctx ends. Only for writes
// that are safe to repeat: with a message ID (the stream drops the second
// copy) or with a revision check whose failure the caller resolves. The
// error keeps nats.go's in its chain.
func Publish(ctx context.Context, js jetstream.JetStream, m *nats.Msg, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	opts = append(opts, jetstream.WithRetryAttempts(0))
	return retry(ctx, firstWriteAttempt, func(ctx context.Context) (*jetstream.PubAck, error) {
		return js.PublishMsg(ctx, m, opts...)
	})
}
