package coord

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cogos-dev/coord/kvstore"
	"github.com/cogos-dev/coord/subjects"
)

// HandoffDonePrefix is the subject prefix of decided handoffs:
// coord.handoff-done.<ns>.<recipient>.<id>, in the same stream as the
// pending ones (coord.handoff.<ns>.<recipient>.<id>).
const HandoffDonePrefix = "coord.handoff-done"

// handoffStream provisions COORD_HANDOFFS on first use. Every handoff has
// its own subject: its pending form under subjects.HandoffPrefix and, once
// decided, its archived form under HandoffDonePrefix. One message per
// subject; retention by age.
func (c *Client) handoffStream(ctx context.Context) (jetstream.Stream, error) {
	return c.lazy.handoffs.get(func() (jetstream.Stream, error) {
		st, err := kvstore.EnsureStream(ctx, c.js, jetstream.StreamConfig{
			Name:              subjects.HandoffStream,
			Description:       "coord handoffs: coord.handoff.<namespace>.<recipient>.<id> (pending), coord.handoff-done.<namespace>.<recipient>.<id> (decided)",
			Subjects:          []string{subjects.HandoffPrefix + ".>", HandoffDonePrefix + ".>"},
			Retention:         jetstream.LimitsPolicy,
			MaxAge:            c.opts.handAge,
			MaxMsgsPerSubject: 1,
			Discard:           jetstream.DiscardOld,
			Replicas:          c.opts.replicas,
			Storage:           c.opts.storage,
			AllowDirect:       true,
		})
		var drift *kvstore.DriftError
		if errors.As(err, &drift) && st != nil {
			c.log.Warn().Err(err).Msg("handoff stream settings differ from this client's; using the stream as it is")
			return st, nil
		}
		if err != nil {
			return nil, fmt.Errorf("coord: %w", wrapNATS(err))
		}
		return st, nil
	})
}

// handoffSubjects are the pending and done subject prefixes (without the
// ID token) of one recipient.
func (c *Client) handoffSubjects(agent string) (pending, done string, err error) {
	pending, err = subjects.HandoffSubject(c.opts.namespace, agent)
	if err != nil {
		return "", "", err
	}
	return pending, HandoffDonePrefix + strings.TrimPrefix(pending, subjects.HandoffPrefix), nil
}

// wrapJS maps nats.go errors that mean "no JetStream answered" to
// ErrUnavailable.
func wrapJS(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, nats.ErrNoResponders), errors.Is(err, jetstream.ErrNoStreamResponse),
		errors.Is(err, nats.ErrTimeout), errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, nats.ErrConnectionClosed), errors.Is(err, nats.ErrConnectionReconnecting),
		errors.Is(err, jetstream.ErrJetStreamNotEnabled):
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return err
}

// checkID accepts only canonical UUIDs: an ID becomes a subject token, so
// "*", ">" or "a.b" must never get through.
func checkID(id string) error {
	u, err := uuid.Parse(id)
	if err != nil || u.String() != id {
		return fmt.Errorf("%w: %q is not a handoff ID", ErrHandoffNotFound, id)
	}
	return nil
}

// decodeHandoff parses a stored handoff and checks it against its subject:
// coord.handoff.<ns>.<to>.<id> holds a pending handoff,
// coord.handoff-done.<ns>.<to>.<id> a decided one.
func decodeHandoff(subj string, data []byte) (handoffRecord, error) {
	var r handoffRecord
	if err := json.Unmarshal(data, &r); err != nil {
		return r, fmt.Errorf("%w: handoff %s: %v", ErrBadValue, subj, err)
	}
	if r.ID == "" || r.From == "" || r.To == "" || r.Artifact == "" || len(r.Leases) != len(r.Claims) {
		return r, fmt.Errorf("%w: handoff %s: missing id, from, to or artifact", ErrBadValue, subj)
	}
	toks := strings.Split(subj, ".")
	if len(toks) != 5 {
		return r, fmt.Errorf("%w: handoff %s: not a handoff subject", ErrBadValue, subj)
	}
	ns, err := subjects.DecodeToken(toks[2])
	if err != nil {
		return r, fmt.Errorf("%w: handoff %s: %v", ErrBadValue, subj, err)
	}
	pending, err := subjects.HandoffSubject(ns, r.To)
	if err != nil {
		return r, fmt.Errorf("%w: handoff %s: %v", ErrBadValue, subj, err)
	}
	done := HandoffDonePrefix + strings.TrimPrefix(pending, subjects.HandoffPrefix)
	switch {
	case subj == pending+"."+r.ID && r.Status == HandoffPending:
	case subj == done+"."+r.ID && (r.Status == HandoffAccepted || r.Status == HandoffRejected):
	default:
		return r, fmt.Errorf("%w: handoff %s: id, recipient or status %q does not match the subject", ErrBadValue, subj, r.Status)
	}
	return r, nil
}

// getHandoff reads the handoff on one subject; ok is false if there is none.
func getHandoff(ctx context.Context, st jetstream.Stream, subj string) (rec handoffRecord, seq uint64, ok bool, err error) {
	m, err := st.GetLastMsgForSubject(ctx, subj)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return rec, 0, false, nil
	}
	if err != nil {
		return rec, 0, false, fmt.Errorf("coord: reading %s: %w", subj, wrapJS(err))
	}
	rec, err = decodeHandoff(m.Subject, m.Data)
	if err != nil {
		return rec, 0, false, err
	}
	return rec, m.Sequence, true, nil
}

// notMine explains why handoff id is not under this agent: another agent's
// (ErrNotRecipient) or nobody's (ErrHandoffNotFound). next_by_subj takes a
// wildcard; the ID is a validated UUID, so each filter matches at most one
// subject.
func (c *Client) notMine(ctx context.Context, st jetstream.Stream, id string) error {
	ns := subjects.EncodeToken(c.opts.namespace)
	for _, prefix := range []string{subjects.HandoffPrefix, HandoffDonePrefix} {
		m, err := st.GetMsg(ctx, 1, jetstream.WithGetMsgSubject(prefix+"."+ns+".*."+id))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("coord: looking up handoff %s: %w", id, wrapJS(err))
		}
		rec, err := decodeHandoff(m.Subject, m.Data)
		if err != nil {
			return err
		}
		return fmt.Errorf("%w: handoff %s is for %s, not %s", ErrNotRecipient, id, rec.To, c.opts.agent)
	}
	return fmt.Errorf("%w: %s", ErrHandoffNotFound, id)
}

// decide records this agent's decision on handoff id. The decided form is
// written create-only (expected last subject sequence 0), so of concurrent
// decisions exactly one wins; the pending form is deleted afterwards, and
// listings hide a pending handoff that has a decided form, so a crash
// between the two writes shows nothing wrong.
func (c *Client) decide(ctx context.Context, id, status, reason string) (Handoff, error) {
	if c.isClosed() {
		return Handoff{}, ErrClosed
	}
	if err := checkID(id); err != nil {
		return Handoff{}, err
	}
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	st, err := c.handoffStream(ctx)
	if err != nil {
		return Handoff{}, err
	}
	pendSubj, doneSubj, err := c.handoffSubjects(c.opts.agent)
	if err != nil {
		return Handoff{}, err
	}
	pendSubj, doneSubj = pendSubj+"."+id, doneSubj+"."+id
	decided := func(rec handoffRecord) (Handoff, error) {
		c.dropPending(ctx, st, pendSubj)
		if rec.Status != status {
			return rec.Handoff, fmt.Errorf("%w: %s was %s", ErrHandoffDecided, id, rec.Status)
		}
		return rec.Handoff, nil
	}
	lookDone := func() (Handoff, bool, error) {
		rec, _, ok, err := getHandoff(ctx, st, doneSubj)
		if err != nil || !ok {
			return Handoff{}, false, err
		}
		h, err := decided(rec)
		return h, true, err
	}
	for range 8 {
		rec, seq, ok, err := getHandoff(ctx, st, pendSubj)
		if err != nil {
			return Handoff{}, err
		}
		if !ok {
			// Decided already (the pending form is deleted after a decision)?
			if h, ok, err := lookDone(); ok || err != nil {
				return h, err
			}
			return Handoff{}, c.notMine(ctx, st, id)
		}
		next := rec
		next.Status = status
		next.Reason = reason
		if status == HandoffAccepted {
			if next.NotTransferred, err = c.transferClaims(ctx, rec); err != nil {
				return Handoff{}, err
			}
		}
		next.DecidedAt = time.Now().UTC()
		data, err := json.Marshal(next)
		if err != nil {
			return Handoff{}, fmt.Errorf("coord: encoding handoff: %w", err)
		}
		_, err = c.js.PublishMsg(ctx, &nats.Msg{Subject: doneSubj, Data: data},
			jetstream.WithExpectLastSequencePerSubject(0))
		if isWrongLastSequence(err) {
			// Decided already: by another client of this agent just now, or
			// by an earlier call that could not delete the pending form.
			if h, ok, err := lookDone(); ok || err != nil {
				return h, err
			}
			continue
		}
		if err != nil {
			return Handoff{}, fmt.Errorf("coord: recording %s handoff %s: %w", status, id, wrapJS(err))
		}
		if err := st.DeleteMsg(ctx, seq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
			c.log.Warn().Err(err).Str("id", id).Msg("could not delete the pending form of a decided handoff; listings hide it")
		}
		return next.Handoff, nil
	}
	return Handoff{}, fmt.Errorf("coord: deciding handoff %s: too much contention", id)
}

// dropPending deletes the pending form of a decided handoff if a crashed or
// concurrent decision left it behind. Best effort: listings hide it anyway.
func (c *Client) dropPending(ctx context.Context, st jetstream.Stream, subj string) {
	m, err := st.GetLastMsgForSubject(ctx, subj)
	if err != nil {
		return
	}
	if err := st.DeleteMsg(ctx, m.Sequence); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		c.log.Debug().Err(err).Str("subject", subj).Msg("could not delete pending form of a decided handoff")
	}
}

// isWrongLastSequence matches the server's "wrong last sequence" codes.
func isWrongLastSequence(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == 10071 || apiErr.ErrorCode == 10164)
}

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
