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

	"github.com/cogos-dev/coord/subjects"
)

// Listings of one agent's handoffs go through a short-lived push consumer
// whose name (subjects.HandoffListConsumer) and filter (in the API subject:
// $JS.API.CONSUMER.CREATE.<stream>.<name>.<filter>) both name the agent, so
// a server enforcing coord's permissions (internal/authz) lets only that
// agent's user list them; the deliveries go to the agent's own inbox. A
// batch direct get could not be restricted: its filter travels in the
// request body.

// consumerInactive bounds how long a listing consumer left behind by a
// crashed client keeps its slot.
const consumerInactive = 5 * time.Second

// consumerIdle is the consumer's idle heartbeat: one arriving before the
// last pending message means nothing more will come (a message removed
// while the listing ran).
const consumerIdle = 250 * time.Millisecond

type consumerConfig struct {
	Name              string        `json:"name"`
	Description       string        `json:"description"`
	DeliverSubject    string        `json:"deliver_subject"`
	DeliverPolicy     string        `json:"deliver_policy"`
	AckPolicy         string        `json:"ack_policy"`
	FilterSubject     string        `json:"filter_subject"`
	InactiveThreshold time.Duration `json:"inactive_threshold"`
	Heartbeat         time.Duration `json:"idle_heartbeat"`
	MemoryStorage     bool          `json:"mem_storage"`
	Replicas          int           `json:"num_replicas"`
}

type consumerCreateRequest struct {
	Stream string         `json:"stream_name"`
	Config consumerConfig `json:"config"`
	Action string         `json:"action"`
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

// A consumer create's first try gets firstCreateAttempt, each next one
// twice as long, up to maxCreateAttempt.
const (
	firstCreateAttempt = time.Second
	maxCreateAttempt   = 4 * time.Second
)

// Server error codes of a consumer create whose name is taken.
const (
	errCodeConsumerExists    = 10148
	errCodeConsumerNameInUse = 10013
)

// consumeAll calls f for every message on filter (one agent's pending or
// decided subjects), in stream order, without consuming anything for good.
func (c *Client) consumeAll(ctx context.Context, stream, agent string, archive bool, filter string, f func(*nats.Msg)) error {
	// An async subscription queues what the consumer pushes (a channel
	// subscription would drop messages once its channel is full).
	ch := make(chan *nats.Msg, 64)
	done := make(chan struct{})
	defer close(done)
	inbox := c.nc.NewInbox()
	sub, err := c.nc.Subscribe(inbox, func(m *nats.Msg) {
		select {
		case ch <- m:
		case <-done:
		}
	})
	if err != nil {
		return fmt.Errorf("coord: listing handoffs of %s: %w", agent, wrapJS(err))
	}
	defer func() {
		if err := sub.Unsubscribe(); err != nil {
			c.log.Debug().Err(err).Msg("unsubscribing listing inbox")
		}
	}()
	name, pending, err := c.createListConsumer(ctx, stream, agent, archive, filter, inbox)
	if err != nil {
		return err
	}
	defer c.deleteConsumer(stream, name)
	for pending > 0 {
		var m *nats.Msg
		select {
		case m = <-ch:
		case <-ctx.Done():
			return fmt.Errorf("coord: listing handoffs of %s: %w", agent, wrapJS(ctx.Err()))
		}
		switch status := m.Header.Get("Status"); status {
		case "":
		case "100": // idle heartbeat: nothing more is coming
			return nil
		default:
			return fmt.Errorf("coord: listing handoffs of %s: server said %s %s", agent, status, m.Header.Get("Description"))
		}
		if pending, err = pendingFromReply(m.Reply); err != nil {
			return fmt.Errorf("coord: listing handoffs of %s: %w", agent, err)
		}
		f(m)
	}
	return nil
}

// createListConsumer takes a free listing slot of agent: it creates the
// slot's consumer (create-only: a unique description makes a busy slot's
// create fail), trying the other slots, then waiting, when all are taken.
// It returns the consumer's name and how many messages it will deliver.
func (c *Client) createListConsumer(ctx context.Context, stream, agent string, archive bool, filter, deliver string) (string, uint64, error) {
	check := agent != c.opts.agent
	start := rand.IntN(subjects.HandoffListSlots)
	wait := 2 * time.Millisecond
	// Each try is bounded: a create sent as a server restarts can go
	// unanswered, and the caller's deadline may be far off. The next try
	// takes the next slot (the unanswered one may have been created; the
	// server removes it after consumerInactive).
	limit := firstCreateAttempt
	for {
		for i := range subjects.HandoffListSlots {
			name, err := subjects.HandoffListConsumer(c.opts.namespace, agent, archive, (start+i)%subjects.HandoffListSlots)
			if err != nil {
				return "", 0, err
			}
			req := consumerCreateRequest{
				Stream: stream,
				Config: consumerConfig{
					Name:              name,
					Description:       "coord handoff listing " + uuid.NewString(),
					DeliverSubject:    deliver,
					DeliverPolicy:     "all",
					AckPolicy:         "none",
					FilterSubject:     filter,
					InactiveThreshold: consumerInactive,
					Heartbeat:         consumerIdle,
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
			tctx, tcancel := context.WithTimeout(ctx, limit)
			m, err := c.request(tctx, subj, data, check)
			unanswered := tctx.Err() != nil && ctx.Err() == nil
			tcancel()
			if unanswered {
				limit = min(2*limit, maxCreateAttempt)
				continue
			}
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

// deleteConsumer removes a listing consumer without waiting for the answer
// (a listing costs one round trip less). A create that races it finds the
// slot busy and takes another; a consumer whose delete is lost goes away on
// its own after consumerInactive.
func (c *Client) deleteConsumer(stream, name string) {
	if err := c.nc.PublishRequest("$JS.API.CONSUMER.DELETE."+stream+"."+name, c.nc.NewRespInbox(), nil); err != nil {
		c.log.Debug().Err(err).Str("consumer", name).Msg("could not delete listing consumer; it expires on its own")
	}
}
