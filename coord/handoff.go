package coord

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"

	"github.com/cogos-dev/coord/kvstore"
	"github.com/cogos-dev/coord/subjects"
)

// Handoff errors.
var (
	// ErrHandoffNotFound: no handoff with that ID in the namespace (never
	// sent, malformed ID, or aged out of the retention window).
	ErrHandoffNotFound = errors.New("coord: handoff not found")
	// ErrNotRecipient: Accept or Reject of a handoff addressed to another agent.
	ErrNotRecipient = errors.New("coord: not the recipient of the handoff")
	// ErrHandoffDecided: Accept of a rejected handoff, or Reject of an
	// accepted one. The Handoff returned beside it shows the decision.
	ErrHandoffDecided = errors.New("coord: handoff already decided")
	// ErrInvalidHandoff: a handoff that cannot be sent (no artifact, fields
	// over their limits, invalid UTF-8, too many claims).
	ErrInvalidHandoff = errors.New("coord: invalid handoff")
)

// Handoff statuses.
const (
	HandoffPending  = "pending"
	HandoffAccepted = "accepted"
	HandoffRejected = "rejected"
)

// Limits on a handoff's fields (bytes of UTF-8). Together they stay well
// under the server's default max payload (1 MiB).
const (
	MaxArtifactBytes      = 4 << 10
	MaxHandoffMessageSize = 64 << 10
	MaxHandoffReasonBytes = 4 << 10
	MaxHandoffClaims      = 64
)

// Handoff is a durable transfer of work from one agent to another. Its JSON
// form keeps the seed's fields (from, to, artifact, message, timestamp) and
// adds the ID, the claims it carries and the recipient's decision.
type Handoff struct {
	ID        string    `json:"id"`
	From      string    `json:"from"`
	To        string    `json:"to"`
	Artifact  string    `json:"artifact"`
	Message   string    `json:"message"`
	Timestamp time.Time `json:"timestamp"`
	// Claims are the paths whose claims travel with the handoff.
	Claims []string `json:"claims,omitempty"`
	// Status is pending, accepted or rejected.
	Status    string    `json:"status"`
	Reason    string    `json:"reason,omitempty"`
	DecidedAt time.Time `json:"decided_at,omitempty,omitzero"` // omitzero: a pending handoff has no decided_at
	// NotTransferred lists the Claims an accept could not move to the
	// recipient because the sender no longer held them (released, expired or
	// taken by someone else since the handoff was sent). Every other path in
	// Claims was moved to the recipient with no gap.
	NotTransferred []string `json:"not_transferred,omitempty"`
}

// handoffRecord is what the stream stores: the Handoff plus the lease of
// each claim as the sender held it when sending.
type handoffRecord struct {
	Handoff
	Leases []string `json:"leases,omitempty"` // Leases[i] is the lease of Claims[i]
}

// HandoffOption adjusts one Handoff.
type HandoffOption func(*handoffOptions) error

type handoffOptions struct {
	claims []string
}

// WithClaims sends the claims on paths with the handoff: the sender must
// hold each of them when sending (else ErrNotOwner naming the path), and the
// recipient becomes their holder when it accepts.
func WithClaims(paths ...string) HandoffOption {
	return func(o *handoffOptions) error {
		o.claims = append(o.claims, paths...)
		if len(o.claims) > MaxHandoffClaims {
			return fmt.Errorf("%w: %d claims (at most %d)", ErrInvalidHandoff, len(o.claims), MaxHandoffClaims)
		}
		return nil
	}
}

// Handoff sends artifact (required: a path, a URL, a branch, whatever the
// work is) and message (optional) to agent to, who need not have connected
// yet. It returns once JetStream has stored it; the handoff stays pending
// until to accepts or rejects it, or it ages out of the retention window.
func (c *Client) Handoff(ctx context.Context, to, artifact, message string, opts ...HandoffOption) (Handoff, error) {
	if c.isClosed() {
		return Handoff{}, ErrClosed
	}
	var o handoffOptions
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return Handoff{}, err
		}
	}
	subj, err := subjects.HandoffSubject(c.opts.namespace, to)
	if err != nil {
		return Handoff{}, err
	}
	if err := checkText("artifact", artifact, MaxArtifactBytes, true); err != nil {
		return Handoff{}, err
	}
	if err := checkText("message", message, MaxHandoffMessageSize, false); err != nil {
		return Handoff{}, err
	}
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	paths, leases, err := c.heldLeases(ctx, o.claims)
	if err != nil {
		return Handoff{}, err
	}
	st, err := c.handoffStream(ctx)
	if err != nil {
		return Handoff{}, err
	}
	rec := handoffRecord{
		Handoff: Handoff{
			ID:        uuid.NewString(),
			From:      c.opts.agent,
			To:        to,
			Artifact:  artifact,
			Message:   message,
			Timestamp: time.Now().UTC(),
			Claims:    paths,
			Status:    HandoffPending,
		},
		Leases: leases,
	}
	data, err := json.Marshal(rec)
	if err != nil {
		return Handoff{}, fmt.Errorf("coord: encoding handoff: %w", err)
	}
	msg := &nats.Msg{Subject: subj + "." + rec.ID, Data: data}
	pctx, done := c.refusable(ctx, msg.Subject)
	_, err = kvstore.Publish(pctx, c.nc, msg, kvstore.WithMsgID(rec.ID),
		kvstore.WithExpectStream(st.CachedInfo().Config.Name))
	err = refusedErr(pctx, err)
	done()
	if err != nil {
		return Handoff{}, fmt.Errorf("coord: storing handoff to %s: %w", to, wrapJS(err))
	}
	return rec.Handoff, nil
}

// Accept accepts a handoff addressed to this client's agent and, if it
// carries claims, makes this client their holder (see Handoff.NotTransferred).
// Accepting an accepted handoff again returns it unchanged; accepting a
// rejected one gives ErrHandoffDecided.
func (c *Client) Accept(ctx context.Context, id string) (Handoff, error) {
	return c.decide(ctx, id, HandoffAccepted, "")
}

// Reject declines a handoff addressed to this client's agent, recording
// reason. Its claims stay with the sender. Rejecting twice returns the
// rejection unchanged; rejecting an accepted handoff gives ErrHandoffDecided.
func (c *Client) Reject(ctx context.Context, id, reason string) (Handoff, error) {
	if err := checkText("reason", reason, MaxHandoffReasonBytes, false); err != nil {
		return Handoff{}, err
	}
	return c.decide(ctx, id, HandoffRejected, reason)
}

func checkText(what, s string, max int, required bool) error {
	switch {
	case required && s == "":
		return fmt.Errorf("%w: empty %s", ErrInvalidHandoff, what)
	case len(s) > max:
		return fmt.Errorf("%w: %s of %d bytes (at most %d)", ErrInvalidHandoff, what, len(s), max)
	case !utf8.ValidString(s):
		return fmt.Errorf("%w: %s is not valid UTF-8", ErrInvalidHandoff, what)
	}
	return nil
}
