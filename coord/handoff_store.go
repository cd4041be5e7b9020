package coord

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cogos-dev/coord/kvstore"
	"github.com/cogos-dev/coord/subjects"
)

// The handoff stream keeps one subject per handoff,
// coord.handoff.<ns>.<recipient>.<id>, and one message per subject: the
// handoff as sent, then (replacing it) the handoff as decided. A decision is
// a publish expecting the pending message's sequence, so exactly one
// decision wins, and the pending state and the archive change in one write.
func (c *Client) handoffStream(ctx context.Context) (jetstream.Stream, error) {
	return c.lazy.handoffs.get(func() (jetstream.Stream, error) {
		st, err := kvstore.EnsureStream(ctx, c.js, jetstream.StreamConfig{
			Name:              subjects.HandoffStream,
			Description:       "coord handoffs: coord.handoff.<namespace>.<recipient>.<id> -> handoff (JSON), latest state only",
			Subjects:          []string{subjects.HandoffPrefix + ".>"},
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

// storedHandoff is one handoff as read from the stream.
type storedHandoff struct {
	rec handoffRecord
	seq uint64
}

// decodeHandoff parses a stored handoff and checks it against its subject.
func decodeHandoff(subj string, data []byte) (handoffRecord, error) {
	var r handoffRecord
	if err := json.Unmarshal(data, &r); err != nil {
		return r, fmt.Errorf("%w: handoff %s: %v", ErrBadValue, subj, err)
	}
	if r.ID == "" || r.From == "" || r.To == "" || r.Artifact == "" || len(r.Leases) != len(r.Claims) {
		return r, fmt.Errorf("%w: handoff %s: missing id, from, to or artifact", ErrBadValue, subj)
	}
	switch r.Status {
	case HandoffPending, HandoffAccepted, HandoffRejected:
	default:
		return r, fmt.Errorf("%w: handoff %s: status %q", ErrBadValue, subj, r.Status)
	}
	if want, err := subjects.HandoffSubject(subjectNS(subj), r.To); err != nil || want+"."+r.ID != subj {
		return r, fmt.Errorf("%w: handoff %s: id or recipient does not match the subject", ErrBadValue, subj)
	}
	return r, nil
}

// subjectNS decodes the namespace token of a handoff subject.
func subjectNS(subj string) string {
	toks := strings.Split(subj, ".")
	if len(toks) != 5 {
		return ""
	}
	ns, err := subjects.DecodeToken(toks[2])
	if err != nil {
		return ""
	}
	return ns
}

// findHandoff loads handoff id. It looks under this agent first (one direct
// get); if absent there, anywhere in the namespace, so that a caller that is
// not the recipient learns ErrNotRecipient rather than ErrHandoffNotFound.
func (c *Client) findHandoff(ctx context.Context, st jetstream.Stream, id string) (storedHandoff, error) {
	mine, err := subjects.HandoffSubject(c.opts.namespace, c.opts.agent)
	if err != nil {
		return storedHandoff{}, err
	}
	m, err := st.GetLastMsgForSubject(ctx, mine+"."+id)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		// Someone else's? next_by_subj takes a wildcard; the ID is a
		// validated UUID, so the filter matches at most one subject.
		anyone := subjects.HandoffPrefix + "." + subjects.EncodeToken(c.opts.namespace) + ".*." + id
		m, err = st.GetMsg(ctx, 1, jetstream.WithGetMsgSubject(anyone))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return storedHandoff{}, fmt.Errorf("%w: %s", ErrHandoffNotFound, id)
		}
		if err != nil {
			return storedHandoff{}, fmt.Errorf("coord: looking up handoff %s: %w", id, wrapJS(err))
		}
		rec, derr := decodeHandoff(m.Subject, m.Data)
		if derr != nil {
			return storedHandoff{}, derr
		}
		return storedHandoff{}, fmt.Errorf("%w: handoff %s is for %s, not %s", ErrNotRecipient, id, rec.To, c.opts.agent)
	}
	if err != nil {
		return storedHandoff{}, fmt.Errorf("coord: looking up handoff %s: %w", id, wrapJS(err))
	}
	rec, err := decodeHandoff(m.Subject, m.Data)
	if err != nil {
		return storedHandoff{}, err
	}
	return storedHandoff{rec: rec, seq: m.Sequence}, nil
}

// decide records the recipient's decision on handoff id.
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
	for range 8 {
		h, err := c.findHandoff(ctx, st, id)
		if err != nil {
			return Handoff{}, err
		}
		if h.rec.Status != HandoffPending {
			if h.rec.Status != status {
				return h.rec.Handoff, fmt.Errorf("%w: %s was %s", ErrHandoffDecided, id, h.rec.Status)
			}
			return h.rec.Handoff, nil
		}
		next := h.rec
		next.Status = status
		next.Reason = reason
		if status == HandoffAccepted {
			if next.NotTransferred, err = c.transferClaims(ctx, h.rec); err != nil {
				return Handoff{}, err
			}
		}
		next.DecidedAt = time.Now().UTC()
		data, err := json.Marshal(next)
		if err != nil {
			return Handoff{}, fmt.Errorf("coord: encoding handoff: %w", err)
		}
		subj, _ := subjects.HandoffSubject(c.opts.namespace, c.opts.agent)
		_, err = c.js.PublishMsg(ctx, &nats.Msg{Subject: subj + "." + id, Data: data},
			jetstream.WithExpectLastSequencePerSubject(h.seq))
		if isWrongLastSequence(err) {
			continue // decided (or re-sent) meanwhile: look again
		}
		if err != nil {
			return Handoff{}, fmt.Errorf("coord: recording %s handoff %s: %w", status, id, wrapJS(err))
		}
		return next.Handoff, nil
	}
	return Handoff{}, fmt.Errorf("coord: deciding handoff %s: too much contention", id)
}

// isWrongLastSequence matches the server's "wrong last sequence" codes.
func isWrongLastSequence(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == 10071 || apiErr.ErrorCode == 10164)
}

// listHandoffs returns agent's handoffs whose status passes keep, in stream
// order, with one batch direct get per 256 handoffs.
func (c *Client) listHandoffs(ctx context.Context, agent string, keep func(string) bool) ([]Handoff, error) {
	if agent == "" {
		agent = c.opts.agent
	}
	subj, err := subjects.HandoffSubject(c.opts.namespace, agent)
	if err != nil {
		return nil, err
	}
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	st, err := c.handoffStream(ctx)
	if err != nil {
		return nil, err
	}
	out := []Handoff{}
	err = c.batchGet(ctx, st.CachedInfo().Config.Name, subj+".*", func(m *nats.Msg) {
		s := m.Header.Get(jetstream.SubjectHeader)
		rec, err := decodeHandoff(s, m.Data)
		if err != nil {
			c.log.Warn().Err(err).Str("subject", s).Msg("skipping unreadable handoff")
			return
		}
		if keep(rec.Status) {
			out = append(out, rec.Handoff)
		}
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

const batchSize = 256

// batchGet calls f for every message on filter, in stream order, using
// batched direct gets (one request per batchSize messages).
func (c *Client) batchGet(ctx context.Context, stream, filter string, f func(*nats.Msg)) error {
	inbox := c.nc.NewRespInbox()
	sub, err := c.nc.SubscribeSync(inbox)
	if err != nil {
		return fmt.Errorf("coord: listing %s: %w", filter, wrapJS(err))
	}
	defer func() {
		if err := sub.Unsubscribe(); err != nil {
			c.log.Debug().Err(err).Msg("unsubscribe batch inbox")
		}
	}()
	api := "$JS.API.DIRECT.GET." + stream
	from := uint64(1)
	for {
		req, _ := json.Marshal(struct {
			Seq   uint64 `json:"seq"`
			Next  string `json:"next_by_subj"`
			Batch int    `json:"batch"`
		}{from, filter, batchSize})
		if err := c.nc.PublishRequest(api, inbox, req); err != nil {
			return fmt.Errorf("coord: listing %s: %w", filter, wrapJS(err))
		}
		n := 0
	batch:
		for {
			m, err := sub.NextMsgWithContext(ctx)
			if err != nil {
				return fmt.Errorf("coord: listing %s: %w", filter, wrapJS(err))
			}
			if status := m.Header.Get("Status"); status != "" {
				switch status {
				case "204": // end of batch
					break batch
				case "404": // nothing (more) on filter
					return nil
				case "503":
					return fmt.Errorf("%w: listing %s: no responders", ErrUnavailable, filter)
				default:
					return fmt.Errorf("coord: listing %s: server said %s %s", filter, status, m.Header.Get("Description"))
				}
			}
			n++
			seq, err := strconv.ParseUint(m.Header.Get(jetstream.SequenceHeader), 10, 64)
			if err != nil {
				return fmt.Errorf("coord: listing %s: bad sequence header: %w", filter, err)
			}
			from = seq + 1
			f(m)
		}
		if n < batchSize {
			return nil
		}
	}
}
