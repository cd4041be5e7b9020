package coord

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/cogos-dev/coord/kvstore"
	"github.com/cogos-dev/coord/subjects"
)

// MaxMessageBytes is the longest broadcast message accepted (bytes of the
// message text, before JSON encoding). A server whose max_payload is smaller
// than the encoded message refuses it too, with the same error.
const MaxMessageBytes = 64 << 10

// Broadcast errors.
var (
	// ErrEmptyMessage: Publish of an empty message.
	ErrEmptyMessage = errors.New("coord: empty message")
	// ErrInvalidMessage: a message that is not valid UTF-8 (JSON would
	// silently replace the bad bytes, so the stored text would differ).
	ErrInvalidMessage = errors.New("coord: invalid message")
	// ErrMessageTooLarge: a message over MaxMessageBytes, or one the server
	// refuses as larger than its max payload or the stream's max message
	// size. Nothing was stored.
	ErrMessageTooLarge = errors.New("coord: message too large")
)

// Broadcast is one message on a channel. Its JSON form keeps the seed's
// fields (channel, agent, message, timestamp) and adds the stream sequence,
// which orders a channel's messages and names each one uniquely.
type Broadcast struct {
	Channel   string    `json:"channel"`
	Agent     string    `json:"agent"`
	Message   string    `json:"message"`
	Timestamp time.Time `json:"timestamp"`
	Seq       uint64    `json:"seq"`
}

// wireBroadcast is the stored message body: the seed's four fields. The
// sequence is the stream's, known only once the message is stored.
type wireBroadcast struct {
	Channel   string    `json:"channel"`
	Agent     string    `json:"agent"`
	Message   string    `json:"message"`
	Timestamp time.Time `json:"timestamp"`
}

// broadcastStream returns the broadcast stream, creating it on first use.
// An existing stream with other settings is used as it is (logged).
func (c *Client) broadcastStream(ctx context.Context) (jetstream.Stream, error) {
	return c.lazy.broadcasts.get(func() (jetstream.Stream, error) {
		ctx, cancel := withDefaultTimeout(ctx)
		defer cancel()
		st, err := kvstore.EnsureStream(ctx, c.js, jetstream.StreamConfig{
			Name:        subjects.BroadcastStream,
			Description: "coord broadcasts: " + subjects.BroadcastPrefix + ".<namespace>.<channel> -> message (JSON)",
			Subjects:    []string{subjects.BroadcastPrefix + ".>"},
			Retention:   jetstream.LimitsPolicy,
			Discard:     jetstream.DiscardOld,
			MaxAge:      c.opts.bcastAge,
			Replicas:    c.opts.replicas,
			Storage:     c.opts.storage,
		})
		var drift *kvstore.DriftError
		if errors.As(err, &drift) && st != nil {
			c.log.Warn().Err(err).Msg("broadcast stream settings differ from this client's; using the stream as it is")
			return st, nil
		}
		if err != nil {
			return nil, fmt.Errorf("coord: provisioning: %w", wrapNATS(err))
		}
		return st, nil
	})
}

// checkMessage validates a broadcast message before anything is sent.
func checkMessage(message string) error {
	switch {
	case message == "":
		return ErrEmptyMessage
	case len(message) > MaxMessageBytes:
		return fmt.Errorf("%w: %d bytes (limit %d)", ErrMessageTooLarge, len(message), MaxMessageBytes)
	case !utf8.ValidString(message):
		return fmt.Errorf("%w: not valid UTF-8", ErrInvalidMessage)
	}
	return nil
}

// Publish sends message to channel and returns once JetStream has stored
// it. The returned Broadcast carries the stream sequence.
//
// An empty message gives ErrEmptyMessage, one over MaxMessageBytes (or over
// the server's max payload) ErrMessageTooLarge; in both cases nothing is
// stored. A try left unanswered (a server going down or just restarted
// drops it without a word) is sent again under the same message ID, so the
// stream stores one copy; if the call fails for lack of an acknowledgement
// within ctx, the message may or may not have been stored.
func (c *Client) Publish(ctx context.Context, channel, message string) (Broadcast, error) {
	subj, err := subjects.BroadcastSubject(c.opts.namespace, channel)
	if err != nil {
		return Broadcast{}, err
	}
	if err := checkMessage(message); err != nil {
		return Broadcast{}, fmt.Errorf("coord: publishing to channel %q: %w", channel, err)
	}
	if c.isClosed() {
		return Broadcast{}, ErrClosed
	}
	if _, err := c.broadcastStream(ctx); err != nil {
		return Broadcast{}, err
	}
	b := Broadcast{Channel: channel, Agent: c.opts.agent, Message: message, Timestamp: time.Now().UTC()}
	body, err := json.Marshal(wireBroadcast{Channel: b.Channel, Agent: b.Agent, Message: b.Message, Timestamp: b.Timestamp})
	if err != nil {
		return Broadcast{}, fmt.Errorf("coord: encoding broadcast: %w", err)
	}
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	// No Nats-Expected-Stream header: the acknowledgement names the
	// stream, which is checked instead. The one header sent, Nats-Msg-Id,
	// costs the server about 6 µs a message (header parse and its dedup
	// table: 28 → 36 µs a publish in BenchmarkBroadcastPublish); it buys
	// one stored copy when an unanswered try is sent again.
	// A channel outside the user's permissions fails at once with
	// ErrPermissionDenied instead of waiting for the deadline.
	pctx, done := c.refusable(ctx, subj)
	ack, err := kvstore.Publish(pctx, c.nc, &nats.Msg{Subject: subj, Data: body}, kvstore.WithMsgID(nuid.Next()))
	err = refusedErr(pctx, err)
	done()
	if err != nil {
		return Broadcast{}, fmt.Errorf("coord: publishing to channel %q: %w", channel, streamError(err))
	}
	if ack.Stream != subjects.BroadcastStream {
		return Broadcast{}, fmt.Errorf("coord: publishing to channel %q: stored in stream %s, not %s (check the streams' subjects)",
			channel, ack.Stream, subjects.BroadcastStream)
	}
	b.Seq = ack.Sequence
	return b, nil
}

// Server error code for a message over a stream's max message size.
const codeMessageTooLarge = 10054

// streamError maps nats.go and server errors of stream operations to coord's
// sentinels, keeping the cause in the chain.
func streamError(err error) error {
	var apiErr *jetstream.APIError
	switch {
	case errors.Is(err, nats.ErrMaxPayload):
		return fmt.Errorf("%w: %w", ErrMessageTooLarge, err)
	case errors.As(err, &apiErr) && apiErr.ErrorCode == codeMessageTooLarge:
		return fmt.Errorf("%w: %w", ErrMessageTooLarge, err)
	case errors.Is(err, nats.ErrNoResponders), errors.Is(err, jetstream.ErrNoStreamResponse),
		errors.Is(err, nats.ErrTimeout), errors.Is(err, nats.ErrConnectionClosed),
		errors.Is(err, nats.ErrConnectionReconnecting), errors.Is(err, nats.ErrConnectionDraining),
		errors.Is(err, jetstream.ErrJetStreamNotEnabled):
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return err
}

// Broadcasts lists the messages of channel stored in the last since (all
// retained messages when since <= 0), oldest first, each once. It reads the
// channel with one ordered consumer up to the last message stored when the
// call began. The window is measured against the server's clock.
// Stored messages that do not parse are skipped (and logged).
func (c *Client) Broadcasts(ctx context.Context, channel string, since time.Duration) ([]Broadcast, error) {
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
	fail := func(err error) ([]Broadcast, error) {
		return nil, fmt.Errorf("coord: listing channel %q: %w", channel, streamError(err))
	}
	// Requests are bounded by the default timeout when ctx has no deadline;
	// reading is not (a long channel takes as long as it takes), but a
	// stalled read ends by the idle check below.
	setup, cancel := withDefaultTimeout(ctx)
	defer cancel()
	info, err := st.Info(setup)
	if err != nil {
		return fail(err)
	}
	out := []Broadcast{}
	last := info.State.LastSeq
	if info.State.Msgs == 0 {
		return out, nil
	}
	cfg := jetstream.OrderedConsumerConfig{
		FilterSubjects:    []string{subj},
		DeliverPolicy:     jetstream.DeliverAllPolicy,
		InactiveThreshold: time.Minute,
	}
	if since > 0 {
		start := time.Now().Add(-since)
		cfg.DeliverPolicy = jetstream.DeliverByStartTimePolicy
		cfg.OptStartTime = &start
	}
	oc, err := st.OrderedConsumer(setup, cfg)
	if err != nil {
		return fail(err)
	}
	it, err := oc.Messages(c.pullLimits(512))
	if err != nil {
		return fail(err)
	}
	defer c.dropConsumer(it, oc)
	ci := oc.CachedInfo()
	if ci == nil || ci.NumPending == 0 {
		return out, nil
	}
	out = make([]Broadcast, 0, min(ci.NumPending, 4096))
	var read uint64 // stream sequence of the last message read
	r := newIdleReader(ctx, it)
	defer r.stop()
	for {
		m, err := r.next()
		if errors.Is(err, errListingIdle) {
			// Nothing came for a while: the messages still counted as
			// pending may have been removed (aged out, deleted) since the
			// consumer was made. Done if the server has nothing left that
			// it has not already handed over.
			ictx, icancel := withDefaultTimeout(ctx)
			ci, err := oc.Info(ictx)
			icancel()
			if err != nil {
				return fail(err)
			}
			if ci.NumPending == 0 && ci.Delivered.Stream <= read {
				return out, nil
			}
			continue
		}
		if err != nil {
			return fail(err)
		}
		md, err := m.Metadata()
		if err != nil {
			return fail(err)
		}
		read = md.Sequence.Stream
		b, err := decodeBroadcast(m, md, channel)
		if err != nil {
			c.log.Warn().Err(err).Str("subject", subj).Msg("skipping unreadable broadcast")
		} else {
			out = append(out, b)
		}
		if md.NumPending == 0 || md.Sequence.Stream >= last {
			return out, nil
		}
	}
}

// listingIdle is how long a listing waits for its next message before it
// asks the server whether any are left.
const listingIdle = time.Second

var errListingIdle = errors.New("coord: listing idle")

// idleReader reads a listing's messages, giving errListingIdle when none
// came for listingIdle. One timer, reset per message, serves the whole
// listing (a context per message costs more than the read).
type idleReader struct {
	ctx    context.Context
	it     jetstream.MessagesContext
	idle   context.Context
	cancel context.CancelCauseFunc
	timer  *time.Timer
}

func newIdleReader(ctx context.Context, it jetstream.MessagesContext) *idleReader {
	r := &idleReader{ctx: ctx, it: it}
	r.arm()
	return r
}

func (r *idleReader) arm() {
	idle, cancel := context.WithCancelCause(r.ctx)
	r.idle, r.cancel = idle, cancel
	r.timer = time.AfterFunc(listingIdle, func() { cancel(errListingIdle) })
}

func (r *idleReader) stop() {
	r.timer.Stop()
	r.cancel(nil)
}

func (r *idleReader) next() (jetstream.Msg, error) {
	m, err := r.it.Next(jetstream.NextContext(r.idle))
	if err != nil && r.ctx.Err() == nil && errors.Is(context.Cause(r.idle), errListingIdle) {
		r.stop()
		r.arm()
		return nil, errListingIdle
	}
	r.timer.Reset(listingIdle)
	return m, err
}

// pullLimits bounds what a listing or feed buffers client-side: n messages,
// and bytes enough for a few of the largest the server accepts (a byte
// limit below one message would stall the consumer).
func (c *Client) pullLimits(n int) jetstream.PullMessagesOpt {
	return jetstream.PullMaxMessagesWithBytesLimit(n, int(max(4<<20, 2*c.nc.MaxPayload())))
}

// dropConsumer stops a listing's iterator and deletes its server-side
// consumer now rather than at its inactivity threshold.
func (c *Client) dropConsumer(it jetstream.MessagesContext, oc jetstream.Consumer) {
	it.Stop()
	ci := oc.CachedInfo()
	if ci == nil || !c.nc.IsConnected() {
		return // the server drops it after its inactivity threshold
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	err := c.js.DeleteConsumer(ctx, subjects.BroadcastStream, ci.Name)
	if err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		c.log.Debug().Err(err).Str("consumer", ci.Name).Msg("deleting broadcast listing consumer (it expires on its own)")
	}
}
