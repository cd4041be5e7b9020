package bench

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cogos-dev/coord/coord"
	"github.com/cogos-dev/coord/subjects"
)

// runHandoff: a sender hands work to a recipient, which sees it in its
// listing and accepts it; n such pairs at once.
func runHandoff(ctx context.Context, e *env) ([]Result, error) {
	return eachSize(e.cfg.Agents, "pairs", func(n int) (Result, error) { return handoff(ctx, e, n) })
}

func handoff(ctx context.Context, e *env, n int) (Result, error) {
	senders, err := e.clients(ctx, n, "hs")
	if err != nil {
		return Result{}, err
	}
	defer closeAll(senders)
	recipients, err := e.clients(ctx, n, "hr")
	if err != nil {
		return Result{}, err
	}
	defer closeAll(recipients)
	jss, closeRaw, err := e.rawConns(n)
	if err != nil {
		return Result{}, err
	}
	defer closeRaw()
	// One handoff first: it creates the stream the floor writes to.
	if err := handOver(ctx, senders[0], recipients[0]); err != nil {
		return Result{}, err
	}
	floors := make([]*floorHandoff, n)
	for i := range n {
		subj, err := subjects.HandoffSubject(e.ns, fmt.Sprintf("floor-%d-%d", n, i))
		if err != nil {
			return Result{}, err
		}
		st, err := jss[i].Stream(ctx, subjects.HandoffStream)
		if err != nil {
			return Result{}, err
		}
		floors[i] = &floorHandoff{js: jss[i], st: st, subj: subj}
	}
	coordOp := func(ctx context.Context, w int) error { return handOver(ctx, senders[w], recipients[w]) }
	floorOp := func(ctx context.Context, w int) error { return floors[w].run(ctx) }
	r, err := compare(ctx, "handoff", fmt.Sprintf("%d pairs", n), n, e.cfg.Duration,
		"publish + get last message of its subject + publish expecting that sequence", coordOp, floorOp)
	if err != nil {
		return Result{}, err
	}
	// How the recipient's listing costs with what it has accepted so far.
	t := time.Now()
	if _, err := recipients[0].Handoffs(ctx, ""); err != nil {
		return Result{}, err
	}
	listing := time.Since(t)
	archived, err := recipients[0].HandoffArchive(ctx, "")
	if err != nil {
		return Result{}, err
	}
	r.extra("archived_per_recipient", float64(len(archived)))
	r.extra("pending_listing_ms", float64(listing)/float64(time.Millisecond))
	r.Note = "send -> recipient lists it -> accept; pending_listing_ms is one listing by a recipient with archived_per_recipient decided handoffs"
	return r, nil
}

// handOver sends one handoff from s to r, checks r lists it, and accepts it.
func handOver(ctx context.Context, s, r *coord.Client) error {
	h, err := s.Handoff(ctx, r.Agent(), "bench/artifact", "bench message")
	if err != nil {
		return err
	}
	pending, err := r.Handoffs(ctx, "")
	if err != nil {
		return err
	}
	found := false
	for _, p := range pending {
		found = found || p.ID == h.ID
	}
	if !found {
		return fmt.Errorf("handoff %s not in the recipient's listing of %d", h.ID, len(pending))
	}
	_, err = r.Accept(ctx, h.ID)
	return err
}

// floorHandoff is the raw equivalent: store, read back, decide with a
// sequence check.
type floorHandoff struct {
	js   jetstream.JetStream
	st   jetstream.Stream
	subj string
	n    int
}

var handoffPayload = bytes.Repeat([]byte("h"), 250)

func (f *floorHandoff) run(ctx context.Context) error {
	f.n++
	subj := f.subj + "." + strconv.Itoa(f.n)
	if _, err := f.js.Publish(ctx, subj, handoffPayload); err != nil {
		return err
	}
	m, err := f.st.GetLastMsgForSubject(ctx, subj)
	if err != nil {
		return err
	}
	_, err = f.js.PublishMsg(ctx, &nats.Msg{Subject: subj, Data: handoffPayload},
		jetstream.WithExpectLastSequencePerSubject(m.Sequence))
	return err
}
