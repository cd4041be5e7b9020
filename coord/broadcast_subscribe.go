package coord

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cogos-dev/coord/subjects"
)

// subscriptionBuffer is how many broadcasts a Subscription holds for a
// reader that is behind; beyond it, delivery waits for the reader (the
// server keeps the rest).
const subscriptionBuffer = 256

// Subscription is a live feed of one channel, opened by Subscribe. C
// delivers each message stored after Subscribe returned, once, in stream
// order; it is closed when the feed ends, and Err then says why.
type Subscription struct {
	channel string
	ch      chan Broadcast
	cancel  context.CancelFunc
	done    chan struct{}

	mu      sync.Mutex
	err     error
	stopped bool
}

// C delivers the channel's new messages, oldest first. It is closed when
// the subscription ends (Stop, the context given to Subscribe ended, the
// client closed, the connection closed).
func (s *Subscription) C() <-chan Broadcast { return s.ch }

// Err says why C was closed: nil while C is open and after Stop; the
// context's error (wrapped) when Subscribe's context ended; ErrClosed when
// the client was closed; ErrUnavailable when the connection closed or the
// server failed.
func (s *Subscription) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Stop ends the subscription and waits until C is closed. It is idempotent.
func (s *Subscription) Stop() {
	s.mu.Lock()
	select {
	case <-s.done:
	default:
		s.stopped = true
	}
	s.mu.Unlock()
	s.cancel()
	<-s.done
}

// Subscribe opens a live feed of channel: every message stored after it
// returns, once and in order, until ctx ends, Stop, or Close. Messages
// published while the server is briefly unreachable are delivered when it
// is back (the feed resumes after the last message it delivered). A stored
// message that does not parse is skipped (and logged).
func (c *Client) Subscribe(ctx context.Context, channel string) (*Subscription, error) {
	subj, err := subjects.BroadcastSubject(c.opts.namespace, channel)
	if err != nil {
		return nil, err
	}
	if c.isClosed() {
		return nil, ErrClosed
	}
	st, err := c.broadcastStream(ctx)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*Subscription, error) {
		return nil, fmt.Errorf("coord: subscribing to channel %q: %w", channel, streamError(err))
	}
	setup, cancelSetup := withDefaultTimeout(ctx)
	defer cancelSetup()
	// Start just after the last stored message rather than with
	// DeliverNew: if the consumer has to be recreated before it delivered
	// anything, it resumes from this point and loses nothing.
	info, err := st.Info(setup)
	if err != nil {
		return fail(err)
	}
	oc, err := st.OrderedConsumer(setup, jetstream.OrderedConsumerConfig{
		FilterSubjects:    []string{subj},
		DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:       info.State.LastSeq + 1,
		InactiveThreshold: time.Minute,
	})
	if err != nil {
		return fail(err)
	}
	it, err := oc.Messages(c.pullLimits(subscriptionBuffer))
	if err != nil {
		return fail(err)
	}
	run, cancel := context.WithCancel(ctx)
	s := &Subscription{
		channel: channel,
		ch:      make(chan Broadcast, subscriptionBuffer),
		cancel:  cancel,
		done:    make(chan struct{}),
	}
	started := c.goTracked(func(cctx context.Context) {
		stop := context.AfterFunc(cctx, cancel)
		defer stop()
		s.run(c, cctx, ctx, run, it, oc, subj)
	})
	if !started {
		cancel()
		c.dropConsumer(it, oc)
		return nil, ErrClosed
	}
	return s, nil
}

// run delivers messages until run ends or the iterator fails, then records
// why and closes C.
func (s *Subscription) run(c *Client, cctx, user, run context.Context, it jetstream.MessagesContext, oc jetstream.Consumer, subj string) {
	var cause error
	defer func() {
		c.dropConsumer(it, oc)
		s.mu.Lock()
		switch {
		case s.stopped:
		case cctx.Err() != nil:
			s.err = fmt.Errorf("coord: subscription to channel %q: %w", s.channel, ErrClosed)
		case user.Err() != nil:
			s.err = fmt.Errorf("coord: subscription to channel %q: %w", s.channel, user.Err())
		case cause != nil:
			s.err = fmt.Errorf("coord: subscription to channel %q: %w", s.channel, subscriptionError(cause))
		}
		s.mu.Unlock()
		close(s.ch)
		close(s.done)
		s.cancel()
	}()
	for {
		m, err := it.Next(jetstream.NextContext(run))
		if err != nil {
			cause = err
			return
		}
		md, err := m.Metadata()
		if err != nil {
			c.log.Warn().Err(err).Str("subject", subj).Msg("skipping broadcast without metadata")
			continue
		}
		b, err := decodeBroadcast(m, md, s.channel)
		if err != nil {
			c.log.Warn().Err(err).Str("subject", subj).Msg("skipping unreadable broadcast")
			continue
		}
		select {
		case s.ch <- b:
		case <-run.Done():
			return
		}
	}
}

// subscriptionError classifies why a feed's iterator stopped on its own.
func subscriptionError(err error) error {
	if errors.Is(err, nats.ErrConnectionClosed) || errors.Is(err, jetstream.ErrMsgIteratorClosed) {
		return fmt.Errorf("%w: connection closed: %w", ErrUnavailable, err)
	}
	return streamError(err)
}
