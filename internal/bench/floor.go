package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// claimPayload is the size of a typical claim record (coord writes about
// this much JSON), so floors move the same bytes.
var claimPayload = bytes.Repeat([]byte("x"), 220)

// floorClaim is the best two-round-trip claim+release: a revision-checked
// publish with a TTL expecting the last marker's sequence, then a
// revision-checked delete whose marker expires (as coord's does).
type floorClaim struct {
	js   jetstream.JetStream
	subj string
	last uint64
}

func (f *floorClaim) claimRelease(ctx context.Context) error {
	ack, err := f.js.PublishMsg(ctx, &nats.Msg{Subject: f.subj, Data: claimPayload},
		jetstream.WithExpectLastSequencePerSubject(f.last), jetstream.WithMsgTTL(30*time.Second))
	if err != nil {
		return fmt.Errorf("floor create: %w", err)
	}
	del, err := f.js.PublishMsg(ctx, &nats.Msg{Subject: f.subj, Header: nats.Header{"KV-Operation": []string{"DEL"}}},
		jetstream.WithExpectLastSequencePerSubject(ack.Sequence), jetstream.WithMsgTTL(time.Minute))
	if err != nil {
		return fmt.Errorf("floor delete: %w", err)
	}
	f.last = del.Sequence
	return nil
}

// failingCreate is the floor of a try-acquire on a held path: one publish
// expecting no previous message on a subject that has one.
func failingCreate(ctx context.Context, js jetstream.JetStream, subj string) error {
	_, err := js.PublishMsg(ctx, &nats.Msg{Subject: subj, Data: claimPayload},
		jetstream.WithExpectLastSequencePerSubject(0), jetstream.WithMsgTTL(30*time.Second))
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant) {
		return nil
	}
	if err == nil {
		return errors.New("floor: create on a held key succeeded")
	}
	return fmt.Errorf("floor failing create: %w", err)
}
