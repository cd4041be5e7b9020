package coord

import (
	"context"
	"slices"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Handoffs returns agent's pending handoffs ("" = this client's agent),
// oldest first, without consuming them: one batch direct get of the
// recipient's pending subjects, and one multi-subject direct get asking
// which of them have a decided form (left behind by a crashed accept).
func (c *Client) Handoffs(ctx context.Context, agent string) ([]Handoff, error) {
	if c.isClosed() {
		return nil, ErrClosed
	}
	if agent == "" {
		agent = c.opts.agent
	}
	pend, done, err := c.handoffSubjects(agent)
	if err != nil {
		return nil, err
	}
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	st, err := c.handoffStream(ctx)
	if err != nil {
		return nil, err
	}
	name := st.CachedInfo().Config.Name
	out, err := c.readHandoffs(ctx, name, pend+".*")
	if err != nil || len(out) == 0 {
		return out, err
	}
	decided := make(map[string]bool)
	for chunk := range slices.Chunk(out, multiLastMax) {
		filters := make([]string, len(chunk))
		for i, h := range chunk {
			filters[i] = done + "." + h.ID
		}
		req := directGetRequest{MultiLast: filters, Batch: len(filters)}
		_, _, err := c.directGet(ctx, name, req, func(m *nats.Msg) {
			if toks := strings.Split(m.Header.Get(jetstream.SubjectHeader), "."); len(toks) == 5 {
				decided[toks[4]] = true
			}
		})
		if err != nil {
			return nil, err
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
	if c.isClosed() {
		return nil, ErrClosed
	}
	if agent == "" {
		agent = c.opts.agent
	}
	_, done, err := c.handoffSubjects(agent)
	if err != nil {
		return nil, err
	}
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	st, err := c.handoffStream(ctx)
	if err != nil {
		return nil, err
	}
	return c.readHandoffs(ctx, st.CachedInfo().Config.Name, done+".*")
}

// readHandoffs returns every readable handoff on filter in stream order,
// skipping (and logging) those that do not parse.
func (c *Client) readHandoffs(ctx context.Context, stream, filter string) ([]Handoff, error) {
	out := []Handoff{}
	err := c.batchGet(ctx, stream, filter, func(m *nats.Msg) {
		s := m.Header.Get(jetstream.SubjectHeader)
		rec, err := decodeHandoff(s, m.Data)
		if err != nil {
			c.log.Warn().Err(err).Str("subject", s).Msg("skipping unreadable handoff")
			return
		}
		out = append(out, rec.Handoff)
	})
	return out, err
}
