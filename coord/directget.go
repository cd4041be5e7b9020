package coord

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go"
)

// Requests that nats.go's JetStream API does not make for us.

// multiLastMax bounds how many direct gets a listing sends at once.
const multiLastMax = 256

// request sends one request and returns its single reply. With check, a
// subject the server refuses (the permission violation comes back before
// the pong of a flush) fails at once with ErrPermissionDenied instead of
// waiting for ctx to end; it costs one extra round trip, so callers ask for
// it only where this client's user may lack the permission (looking at
// another agent's handoffs).
func (c *Client) request(ctx context.Context, subj string, data []byte, check bool) (*nats.Msg, error) {
	if !check {
		m, err := c.nc.RequestWithContext(ctx, subj, data)
		if err != nil {
			return nil, wrapJS(err)
		}
		return m, nil
	}
	ch := make(chan *nats.Msg, 1)
	inbox := c.nc.NewRespInbox()
	sub, err := c.nc.ChanSubscribe(inbox, ch)
	if err != nil {
		return nil, wrapJS(err)
	}
	defer func() {
		if err := sub.Unsubscribe(); err != nil {
			c.log.Debug().Err(err).Msg("unsubscribing request inbox")
		}
	}()
	if err := c.nc.PublishRequest(subj, inbox, data); err != nil {
		return nil, wrapJS(err)
	}
	if err := c.nc.FlushWithContext(ctx); err != nil {
		return nil, wrapJS(err)
	}
	if isPermissionViolation(c.nc.LastError(), subj) {
		return nil, fmt.Errorf("%w: %s", ErrPermissionDenied, subj)
	}
	select {
	case m := <-ch:
		return m, nil
	case <-ctx.Done():
		return nil, wrapJS(ctx.Err())
	}
}
