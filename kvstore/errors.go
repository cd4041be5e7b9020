package kvstore

import (
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

var (
	// ErrKeyExists is returned by Create when the key holds a live value.
	// The error is an *ExistsError carrying that value.
	ErrKeyExists = errors.New("kvstore: key exists")
	// ErrRevisionMismatch is returned by revision-checked writes when the
	// key's latest revision is not the expected one (server codes 10071 and,
	// on replicated streams, 10164).
	ErrRevisionMismatch = errors.New("kvstore: revision mismatch")
	// ErrNotFound is returned by Get when the key has no live value.
	ErrNotFound = errors.New("kvstore: key not found")
	// ErrInvalidKey is returned for keys NATS would reject or misroute.
	ErrInvalidKey = errors.New("kvstore: invalid key")
	// ErrConfigDrift is wrapped by errors that report a bucket or stream
	// whose existing configuration differs from the one asked for.
	ErrConfigDrift = errors.New("kvstore: existing configuration differs")
	// ErrUnavailable wraps errors that mean no server answered in time (no
	// responders, timeouts, a closed or reconnecting connection).
	ErrUnavailable = errors.New("kvstore: jetstream unavailable")
)

// ExistsError is returned by Create when the key is live; it carries the
// value found, so the caller needs no second round trip to learn who holds it.
type ExistsError struct{ Entry Entry }

func (e *ExistsError) Error() string {
	return fmt.Sprintf("kvstore: key %q exists at revision %d", e.Entry.Key, e.Entry.Revision)
}

// Is makes errors.Is(err, ErrKeyExists) true.
func (e *ExistsError) Is(target error) bool { return target == ErrKeyExists }

// Server error codes that kvstore maps to sentinels.
const (
	codeWrongLastSequence         = 10071
	codeWrongLastSequenceConstant = 10164
	codeNoMessageFound            = 10037
	codeJetStreamUnavailable      = 10008
)

// mapError turns server and client errors into this package's sentinels,
// keeping the original in the chain.
func mapError(err error) error {
	if err == nil {
		return nil
	}
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode {
		case codeWrongLastSequence, codeWrongLastSequenceConstant:
			return fmt.Errorf("%w: %w", ErrRevisionMismatch, err)
		case codeNoMessageFound:
			return fmt.Errorf("%w: %w", ErrNotFound, err)
		case codeJetStreamUnavailable:
			return fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		if apiErr.Code == 503 {
			return fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
	}
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound), errors.Is(err, jetstream.ErrKeyNotFound):
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	case errors.Is(err, nats.ErrNoResponders), errors.Is(err, jetstream.ErrNoStreamResponse),
		errors.Is(err, nats.ErrTimeout), errors.Is(err, nats.ErrConnectionClosed),
		errors.Is(err, nats.ErrConnectionReconnecting), errors.Is(err, nats.ErrConnectionDraining),
		errors.Is(err, jetstream.ErrJetStreamNotEnabled):
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return err
}
