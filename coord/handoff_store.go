package coord

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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
const HandoffDonePrefix = subjects.HandoffDonePrefix

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
			// Decisions replace the pending form with a tombstone that
			// expires (the recipient may publish on its own subjects but
			// not delete messages by sequence).
			AllowMsgTTL: true,
		})
		var drift *kvstore.DriftError
		if errors.As(err, &drift) && st != nil {
			for _, d := range drift.Drifts {
				if d.Setting == "subjects" || d.Setting == "max messages per subject" {
					// Decisions could not be stored, or would pile up.
					return nil, fmt.Errorf("coord: handoff stream cannot be used as it is: %w", err)
				}
			}
			c.log.Warn().Err(err).Msg("handoff stream settings differ from this client's; using the stream as it is")
			err = nil
		}
		if err != nil {
			return nil, fmt.Errorf("coord: provisioning: %w", wrapNATS(err))
		}
		if !st.CachedInfo().Config.AllowDirect {
			return nil, fmt.Errorf("coord: handoff stream cannot be used as it is: %w: direct gets are off (set allow_direct)", kvstore.ErrConfigDrift)
		}
		return st, nil
	})
}

// A tombstone replaces the pending form of a decided handoff: the header
// marks it, the per-message TTL removes it soon after.
const (
	tombstoneHeader = "Coord-Handoff"
	tombstoneValue  = "decided"
	tombstoneTTL    = time.Second
)

func isTombstone(h nats.Header) bool { return h.Get(tombstoneHeader) == tombstoneValue }

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
	// With direct gets on, this is $JS.API.DIRECT.GET.<stream>.<subj>: a
	// request a permission can restrict to the recipient's subjects.
	m, err := st.GetLastMsgForSubject(ctx, subj)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return rec, 0, false, nil
	}
	if err != nil {
		return rec, 0, false, fmt.Errorf("coord: reading %s: %w", subj, wrapJS(err))
	}
	if isTombstone(m.Header) {
		return rec, 0, false, nil
	}
	rec, err = decodeHandoff(m.Subject, m.Data)
	if err != nil {
		return rec, 0, false, err
	}
	return rec, m.Sequence, true, nil
}

// notMine explains why handoff id is not under this agent: another agent's
// (ErrNotRecipient) or nobody's (ErrHandoffNotFound). It asks for the last
// message on <prefix>.<ns>.*.<id> (the ID is a validated UUID, so the
// wildcard matches at most one subject). A user restricted to its own
// handoffs may not ask: then the answer is ErrHandoffNotFound wrapping
// ErrPermissionDenied.
func (c *Client) notMine(ctx context.Context, st jetstream.Stream, id string) error {
	ns := subjects.EncodeToken(c.opts.namespace)
	stream := st.CachedInfo().Config.Name
	for _, prefix := range []string{subjects.HandoffPrefix, HandoffDonePrefix} {
		m, err := c.request(ctx, "$JS.API.DIRECT.GET."+stream+"."+prefix+"."+ns+".*."+id, nil, true)
		if errors.Is(err, ErrPermissionDenied) {
			return fmt.Errorf("%w: %s is not among %s's handoffs (%w to look further)", ErrHandoffNotFound, id, c.opts.agent, err)
		}
		if err != nil {
			return fmt.Errorf("coord: looking up handoff %s: %w", id, err)
		}
		switch status := m.Header.Get("Status"); status {
		case "":
		case "404":
			continue
		default:
			return fmt.Errorf("coord: looking up handoff %s: server said %s %s", id, status, m.Header.Get("Description"))
		}
		if isTombstone(m.Header) {
			continue
		}
		rec, err := decodeHandoff(m.Header.Get(jetstream.SubjectHeader), m.Data)
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
		if status == HandoffAccepted && len(rec.Claims) > 0 {
			// Never move claims for a handoff that was decided already (an
			// earlier decision whose pending form was left behind).
			if h, ok, err := lookDone(); ok || err != nil {
				return h, err
			}
			if next.NotTransferred, err = c.transferClaims(ctx, rec); err != nil {
				return Handoff{}, err
			}
		}
		next.DecidedAt = time.Now().UTC()
		data, err := json.Marshal(next)
		if err != nil {
			return Handoff{}, fmt.Errorf("coord: encoding handoff: %w", err)
		}
		pctx, done := c.refusable(ctx, doneSubj)
		_, err = kvstore.Publish(pctx, c.nc, &nats.Msg{Subject: doneSubj, Data: data},
			kvstore.WithExpectLastSequencePerSubject(0))
		err = refusedErr(pctx, err)
		done()
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
		if err := c.removePending(ctx, st, pendSubj, seq); err != nil {
			c.log.Warn().Err(err).Str("id", id).Msg("could not remove the pending form of a decided handoff; listings hide it")
		}
		return next.Handoff, nil
	}
	return Handoff{}, fmt.Errorf("coord: deciding handoff %s: too much contention", id)
}

// dropPending removes the pending form of a decided handoff if a crashed or
// concurrent decision left it behind. Best effort: listings hide it anyway.
func (c *Client) dropPending(ctx context.Context, st jetstream.Stream, subj string) {
	m, err := st.GetLastMsgForSubject(ctx, subj)
	if err != nil || isTombstone(m.Header) {
		return
	}
	if err := c.removePending(ctx, st, subj, m.Sequence); err != nil {
		c.log.Debug().Err(err).Str("subject", subj).Msg("could not remove pending form of a decided handoff")
	}
}

// removePending replaces the pending form (sequence seq) of a decided
// handoff with a tombstone that expires after tombstoneTTL: one publish on
// the recipient's own subject, which its permissions allow, where deleting
// by sequence would need a right over every message of the stream. A
// stream made before tombstones (no per-message TTLs) gets the old delete.
func (c *Client) removePending(ctx context.Context, st jetstream.Stream, subj string, seq uint64) error {
	if !st.CachedInfo().Config.AllowMsgTTL {
		if err := st.DeleteMsg(ctx, seq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
			return err
		}
		return nil
	}
	msg := &nats.Msg{Subject: subj, Header: nats.Header{tombstoneHeader: []string{tombstoneValue}}}
	_, err := kvstore.Publish(ctx, c.nc, msg, kvstore.WithExpectLastSequencePerSubject(seq), kvstore.WithMsgTTL(tombstoneTTL))
	if isWrongLastSequence(err) {
		return nil // replaced already (a concurrent decision's tombstone)
	}
	return err
}

// isWrongLastSequence matches the server's "wrong last sequence" codes.
func isWrongLastSequence(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == 10071 || apiErr.ErrorCode == 10164)
}
