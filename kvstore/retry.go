package kvstore

import (
	"context"
	"errors"
	"strconv"
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
//   - a request that goes unanswered: right after a node restarts a request
//     can be dropped on the floor (the restarted server is not the stream's
//     leader and its routes are not up yet). A read's first try gets
//     firstReadAttempt, a write's firstWriteAttempt, each next one twice as
//     long, up to maxReadAttempt; an answer normally takes a millisecond, so
//     a resend under load costs little. Reads are idempotent; a write is
//     sent again only when that is safe (see Bucket.send and Publish).
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
// maxReadAttempt) and an unanswered try is repeated: only for requests
// that are safe to repeat. The error returned is mapped (mapError).
func retry[T any](ctx context.Context, attempt time.Duration, op func(context.Context) (T, error)) (T, error) {
	// One context per try at most (none when the caller's deadline comes
	// before the try's bound): requests are the hot path of every claim.
	end, bounded := ctx.Deadline()
	if !bounded {
		end = time.Now().Add(defaultTimeout)
	}
	pause := firstRetryPause
	for {
		tryEnd := end
		if attempt > 0 {
			tryEnd = minTime(end, time.Now().Add(attempt))
			attempt = min(2*attempt, maxReadAttempt)
		}
		actx, cancel := ctx, context.CancelFunc(nil)
		if !bounded || tryEnd.Before(end) {
			actx, cancel = context.WithDeadline(ctx, tryEnd)
		}
		v, err := op(actx)
		if cancel != nil {
			cancel()
		}
		if err == nil {
			return v, nil
		}
		over := ctx.Err() != nil || !time.Now().Before(end)
		unanswered := attempt > 0 && !over &&
			(errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout))
		if over || !(unanswered || transient(err)) || !sleep(ctx, min(pause, time.Until(end))) {
			return v, mapError(err)
		}
		pause = min(2*pause, maxRetryPause)
	}
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
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
func Publish(ctx context.Context, nc *nats.Conn, m *nats.Msg, opts ...PublishOpt) (*jetstream.PubAck, error) {
	if m.Header == nil {
		m.Header = make(nats.Header, len(opts))
	}
	for _, o := range opts {
		o(m.Header)
	}
	return retry(ctx, firstWriteAttempt, func(ctx context.Context) (*jetstream.PubAck, error) {
		return request(ctx, nc, m)
	})
}

// PublishOpt sets a header of a message sent with Publish: the headers
// nats.go's publish options of the same names set.
type PublishOpt func(nats.Header)

// WithMsgID has the stream store the message once however often it is sent
// (within the stream's duplicate window).
func WithMsgID(id string) PublishOpt {
	return func(h nats.Header) { h[jetstream.MsgIDHeader] = []string{id} }
}

// expectLastSeq and setTTL set the headers of WithExpectLastSequencePerSubject
// and WithMsgTTL; Bucket writes call them directly (no option value on the
// hot path).
func expectLastSeq(h nats.Header, seq uint64) {
	h[jetstream.ExpectedLastSubjSeqHeader] = []string{strconv.FormatUint(seq, 10)}
}

func setTTL(h nats.Header, ttl time.Duration) {
	h[jetstream.MsgTTLHeader] = []string{roundTTL(ttl).String()}
}

// WithExpectStream refuses the message unless it lands in stream name.
func WithExpectStream(name string) PublishOpt {
	return func(h nats.Header) { h[jetstream.ExpectedStreamHeader] = []string{name} }
}

// WithExpectLastSequencePerSubject refuses the message unless the last
// message on its subject has sequence seq (0: none).
func WithExpectLastSequencePerSubject(seq uint64) PublishOpt {
	return func(h nats.Header) { expectLastSeq(h, seq) }
}

// WithMsgTTL has the stream remove the message after ttl (rounded up to
// whole seconds, the server's resolution).
func WithMsgTTL(ttl time.Duration) PublishOpt {
	return func(h nats.Header) { setTTL(h, ttl) }
}
