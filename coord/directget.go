package coord

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Batched direct gets, which nats.go lacks: one request, many replies, then
// an end-of-batch status. Any primitive that lists a stream may use them.

const (
	batchSize    = 256
	multiLastMax = 256 // the server answers at most 1024 subjects a request
)

type directGetRequest struct {
	Seq       uint64   `json:"seq,omitempty"`
	Next      string   `json:"next_by_subj,omitempty"`
	MultiLast []string `json:"multi_last,omitempty"`
	Batch     int      `json:"batch,omitempty"`
}

// batchGet calls f for every message on filter, in stream order, with one
// batched direct get per batchSize messages.
func (c *Client) batchGet(ctx context.Context, stream, filter string, f func(*nats.Msg)) error {
	req := directGetRequest{Seq: 1, Next: filter, Batch: batchSize}
	for {
		last, more, err := c.directGet(ctx, stream, req, f)
		if err != nil || !more {
			return err
		}
		if last < req.Seq {
			return fmt.Errorf("coord: listing %s: server reported more messages but sent none", filter)
		}
		req.Seq = last + 1
	}
}

// directGet sends one batched direct get and calls f for each message in the
// answer. more reports that messages past the last one sent remain.
func (c *Client) directGet(ctx context.Context, stream string, req directGetRequest, f func(*nats.Msg)) (last uint64, more bool, err error) {
	data, err := json.Marshal(req)
	if err != nil {
		return 0, false, fmt.Errorf("coord: encoding direct get: %w", err)
	}
	// A channel sized for the whole batch (plus the end-of-batch status):
	// SubscribeSync would allocate nats.go's default 64k-slot channel, which
	// costs more than the request itself.
	ch := make(chan *nats.Msg, max(req.Batch, 1)+2)
	inbox := c.nc.NewRespInbox()
	sub, err := c.nc.ChanSubscribe(inbox, ch)
	if err != nil {
		return 0, false, fmt.Errorf("coord: direct get: %w", wrapJS(err))
	}
	defer func() {
		if err := sub.Unsubscribe(); err != nil {
			c.log.Debug().Err(err).Msg("unsubscribing direct get inbox")
		}
	}()
	if err := c.nc.PublishRequest("$JS.API.DIRECT.GET."+stream, inbox, data); err != nil {
		return 0, false, fmt.Errorf("coord: direct get: %w", wrapJS(err))
	}
	for {
		var m *nats.Msg
		select {
		case m = <-ch:
		case <-ctx.Done():
			return 0, false, fmt.Errorf("coord: direct get: %w", wrapJS(ctx.Err()))
		}
		switch status := m.Header.Get("Status"); status {
		case "":
		case "204": // end of batch
			np, _ := strconv.ParseUint(m.Header.Get("Nats-Num-Pending"), 10, 64)
			return last, np > 0 && req.MultiLast == nil, nil
		case "404": // nothing (more) to send
			return last, false, nil
		case "503":
			return 0, false, fmt.Errorf("%w: direct get on %s: no responders", ErrUnavailable, stream)
		default:
			return 0, false, fmt.Errorf("coord: direct get on %s: server said %s %s", stream, status, m.Header.Get("Description"))
		}
		seq, err := strconv.ParseUint(m.Header.Get(jetstream.SequenceHeader), 10, 64)
		if err != nil {
			return 0, false, fmt.Errorf("coord: direct get on %s: bad sequence header: %w", stream, err)
		}
		last = seq
		f(m)
	}
}
