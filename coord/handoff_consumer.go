package coord

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cogos-dev/coord/subjects"
)

// Listings of one agent's handoffs go through a short-lived pull consumer
// whose name (subjects.HandoffListConsumer) and filter (in the API subject:
// $JS.API.CONSUMER.CREATE.<stream>.<name>.<filter>) both name the agent, so
// a server enforcing coord's permissions (internal/authz) lets only that
// agent's user list them. A batch direct get could not be restricted: its
// filter travels in the request body.

// consumerInactive bounds how long a listing consumer left behind by a
// crashed client keeps its slot.
const consumerInactive = 5 * time.Second

type consumerCreateRequest struct {
	Stream string                   `json:"stream_name"`
	Config jetstream.ConsumerConfig `json:"config"`
	Action string                   `json:"action"`
}

type apiError struct {
	Code        int    `json:"code"`
	ErrCode     int    `json:"err_code"`
	Description string `json:"description"`
}

type consumerCreateResponse struct {
	Error      *apiError `json:"error"`
	NumPending uint64    `json:"num_pending"`
}

// Server error codes of a consumer create whose name is taken.
const (
	errCodeConsumerExists    = 10148
	errCodeConsumerNameInUse = 10013
)

// consumeAll calls f for every message on filter (one agent's pending or
// decided subjects), in stream order, without consuming anything for good.
func (c *Client) consumeAll(ctx context.Context, stream, agent string, archive bool, filter string, f func(*nats.Msg)) error {
	name, pending, err := c.createListConsumer(ctx, stream, agent, archive, filter)
	if err != nil {
		return err
	}
	defer c.deleteConsumer(stream, name)
	for pending > 0 {
		batch := int(min(pending, batchSize))
		got, left, err := c.pull(ctx, stream, name, batch, f)
		if err != nil {
			return err
		}
		if got < batch || left == 0 {
			return nil // the end: fewer than asked for, or none left
		}
		pending = left
	}
	return nil
}

// createListConsumer takes a free listing slot of agent: it creates the
// slot's consumer (create-only: a unique description makes a busy slot's
// create fail), trying the other slots, then waiting, when all are taken.
func (c *Client) createListConsumer(ctx context.Context, stream, agent string, archive bool, filter string) (string, uint64, error) {
	check := agent != c.opts.agent
	start := rand.IntN(subjects.HandoffListSlots)
	wait := 2 * time.Millisecond
	for {
		for i := range subjects.HandoffListSlots {
			name, err := subjects.HandoffListConsumer(c.opts.namespace, agent, archive, (start+i)%subjects.HandoffListSlots)
			if err != nil {
				return "", 0, err
			}
			req := consumerCreateRequest{
				Stream: stream,
				Config: jetstream.ConsumerConfig{
					Name:              name,
					Description:       "coord handoff listing " + uuid.NewString(),
					DeliverPolicy:     jetstream.DeliverAllPolicy,
					AckPolicy:         jetstream.AckNonePolicy,
					FilterSubject:     filter,
					InactiveThreshold: consumerInactive,
					MemoryStorage:     true,
					Replicas:          1,
				},
				Action: "create",
			}
			data, err := json.Marshal(req)
			if err != nil {
				return "", 0, fmt.Errorf("coord: encoding consumer request: %w", err)
			}
			subj := "$JS.API.CONSUMER.CREATE." + stream + "." + name + "." + filter
			m, err := c.request(ctx, subj, data, check)
			if err != nil {
				return "", 0, fmt.Errorf("coord: listing handoffs of %s: %w", agent, err)
			}
			var resp consumerCreateResponse
			if err := json.Unmarshal(m.Data, &resp); err != nil {
				return "", 0, fmt.Errorf("coord: listing handoffs of %s: bad consumer reply: %w", agent, err)
			}
			switch {
			case resp.Error == nil:
				return name, resp.NumPending, nil
			case resp.Error.ErrCode == errCodeConsumerExists || resp.Error.ErrCode == errCodeConsumerNameInUse:
				continue // slot busy
			default:
				return "", 0, fmt.Errorf("coord: listing handoffs of %s: %s (code %d)", agent, resp.Error.Description, resp.Error.ErrCode)
			}
		}
		// Every slot is busy with another listing of this agent.
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return "", 0, fmt.Errorf("coord: listing handoffs of %s: every listing slot busy: %w", agent, wrapJS(ctx.Err()))
		case <-t.C:
		}
		wait = min(2*wait, 100*time.Millisecond)
	}
}

// pull fetches up to batch messages (no wait) and returns how many came and
// how many the server said remained after the last.
func (c *Client) pull(ctx context.Context, stream, name string, batch int, f func(*nats.Msg)) (got int, left uint64, err error) {
	ch := make(chan *nats.Msg, batch+2)
	inbox := c.nc.NewRespInbox()
	sub, err := c.nc.ChanSubscribe(inbox, ch)
	if err != nil {
		return 0, 0, fmt.Errorf("coord: pull: %w", wrapJS(err))
	}
	defer func() {
		if err := sub.Unsubscribe(); err != nil {
			c.log.Debug().Err(err).Msg("unsubscribing pull inbox")
		}
	}()
	req := fmt.Appendf(nil, `{"batch":%d,"no_wait":true}`, batch)
	if err := c.nc.PublishRequest("$JS.API.CONSUMER.MSG.NEXT."+stream+"."+name, inbox, req); err != nil {
		return 0, 0, fmt.Errorf("coord: pull: %w", wrapJS(err))
	}
	for got < batch {
		var m *nats.Msg
		select {
		case m = <-ch:
		case <-ctx.Done():
			return got, 0, fmt.Errorf("coord: pull from %s: %w", name, wrapJS(ctx.Err()))
		}
		switch status := m.Header.Get("Status"); status {
		case "":
		case "404", "408": // no (more) messages
			return got, 0, nil
		default:
			return got, 0, fmt.Errorf("coord: pull from %s: server said %s %s", name, status, m.Header.Get("Description"))
		}
		left, err = pendingFromReply(m.Reply)
		if err != nil {
			return got, 0, fmt.Errorf("coord: pull from %s: %w", name, err)
		}
		got++
		f(m)
		if left == 0 {
			return got, 0, nil
		}
	}
	return got, left, nil
}

// pendingFromReply reads the pending count from a delivery's reply subject:
// $JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>, or
// the longer form with domain and account hash.
func pendingFromReply(reply string) (uint64, error) {
	toks := strings.Split(reply, ".")
	var tok string
	switch {
	case len(toks) == 9 && toks[0] == "$JS" && toks[1] == "ACK":
		tok = toks[8]
	case len(toks) >= 11 && toks[0] == "$JS" && toks[1] == "ACK":
		tok = toks[10]
	default:
		return 0, fmt.Errorf("unexpected reply subject %q", reply)
	}
	n, err := strconv.ParseUint(tok, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("unexpected reply subject %q", reply)
	}
	return n, nil
}

// deleteConsumer removes a listing consumer (with a fresh context: it runs
// after the caller's may have ended). If it fails, the consumer goes away
// on its own after consumerInactive.
func (c *Client) deleteConsumer(stream, name string) {
	ctx, cancel := cleanupContext()
	defer cancel()
	m, err := c.request(ctx, "$JS.API.CONSUMER.DELETE."+stream+"."+name, nil, false)
	if err == nil {
		var resp struct {
			Error *apiError `json:"error"`
		}
		if err = json.Unmarshal(m.Data, &resp); err == nil && resp.Error != nil {
			err = fmt.Errorf("%s (code %d)", resp.Error.Description, resp.Error.ErrCode)
		}
	}
	if err != nil {
		c.log.Debug().Err(err).Str("consumer", name).Msg("could not delete listing consumer; it expires on its own")
	}
}
