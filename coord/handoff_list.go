package coord

import (
	"context"
	"slices"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Handoffs returns agent's pending handoffs ("" = this client's agent),
// oldest first, without consuming them: one short-lived consumer on the
// recipient's pending subjects (see handoff_consumer.go), and one
// pipelined round of direct gets asking which of them have a decided form
// (left behind by a crashed accept). Listing another agent's handoffs needs
// a user allowed to (ErrPermissionDenied otherwise).
func (c *Client) Handoffs(ctx context.Context, agent string) ([]Handoff, error) {
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	agent, name, pend, done, err := c.handoffListing(ctx, agent)
	if err != nil {
		return nil, err
	}
	out, err := c.readHandoffs(ctx, name, agent, false, pend+".*")
	if err != nil || len(out) == 0 {
		return out, err
	}
	decided := make(map[string]bool)
	for chunk := range slices.Chunk(out, multiLastMax) {
		subjs := make([]string, len(chunk))
		for i, h := range chunk {
			subjs[i] = done + "." + h.ID
		}
		found, err := c.lastBySubjects(ctx, name, subjs)
		if err != nil {
			return nil, err
		}
		for _, i := range found {
			decided[chunk[i].ID] = true
		}
	}
	if len(decided) == 0 {
		return out, nil
	}
	return slices.DeleteFunc(out, func(h Handoff) bool { return decided[h.ID] }), nil
}

// HandoffArchive returns agent's accepted and rejected handoffs still within
// the retention window ("" = this client's agent), in decision order.
func (c *Client) HandoffArchive(ctx context.Context, agent string) ([]Handoff, error) {
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	agent, name, _, done, err := c.handoffListing(ctx, agent)
	if err != nil {
		return nil, err
	}
	return c.readHandoffs(ctx, name, agent, true, done+".*")
}

// handoffListing resolves what both listings need: the agent ("" = this
// client's), the stream's name and the agent's pending and decided subject
// prefixes.
func (c *Client) handoffListing(ctx context.Context, agent string) (who, stream, pend, done string, err error) {
	if c.isClosed() {
		return "", "", "", "", ErrClosed
	}
	if agent == "" {
		agent = c.opts.agent
	}
	if pend, done, err = c.handoffSubjects(agent); err != nil {
		return "", "", "", "", err
	}
	st, err := c.handoffStream(ctx)
	if err != nil {
		return "", "", "", "", err
	}
	return agent, st.CachedInfo().Config.Name, pend, done, nil
}

// readHandoffs returns every readable handoff on filter in stream order,
// skipping tombstones of decided handoffs and (with a log line) values that
// do not parse.
func (c *Client) readHandoffs(ctx context.Context, stream, agent string, archive bool, filter string) ([]Handoff, error) {
	out := []Handoff{}
	err := c.consumeAll(ctx, stream, agent, archive, filter, func(m *nats.Msg) {
		if isTombstone(m.Header) {
			return
		}
		rec, err := decodeHandoff(m.Subject, m.Data)
		if err != nil {
			c.log.Warn().Err(err).Str("subject", m.Subject).Msg("skipping unreadable handoff")
			return
		}
		out = append(out, rec.Handoff)
	})
	return out, err
}

// lastBySubjects sends one direct get of the last-by-subject form
// ($JS.API.DIRECT.GET.<stream>.<subject>, which a permission can name) per
// subject, all at once, and returns the indexes of those that hold a
// message.
func (c *Client) lastBySubjects(ctx context.Context, stream string, subjs []string) ([]int, error) {
	ch := make(chan *nats.Msg, len(subjs)+1)
	inbox := c.nc.NewRespInbox()
	sub, err := c.nc.ChanSubscribe(inbox, ch)
	if err != nil {
		return nil, wrapJS(err)
	}
	defer func() {
		if err := sub.Unsubscribe(); err != nil {
			c.log.Debug().Err(err).Msg("unsubscribing direct get inbox")
		}
	}()
	index := make(map[string]int, len(subjs))
	for i, s := range subjs {
		index[s] = i
		if err := c.nc.PublishRequest("$JS.API.DIRECT.GET."+stream+"."+s, inbox, nil); err != nil {
			return nil, wrapJS(err)
		}
	}
	var found []int
	for range subjs {
		var m *nats.Msg
		select {
		case m = <-ch:
		case <-ctx.Done():
			return nil, wrapJS(ctx.Err())
		}
		switch status := m.Header.Get("Status"); status {
		case "":
			if i, ok := index[m.Header.Get(jetstream.SubjectHeader)]; ok && !isTombstone(m.Header) {
				found = append(found, i)
			}
		case "404":
		case "503":
			return nil, ErrUnavailable
		default:
			return nil, &directGetError{stream: stream, status: status, desc: m.Header.Get("Description")}
		}
	}
	return found, nil
}

type directGetError struct{ stream, status, desc string }

func (e *directGetError) Error() string {
	return "coord: direct get on " + e.stream + ": server said " + e.status + " " + e.desc
}
