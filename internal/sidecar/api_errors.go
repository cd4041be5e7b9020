package sidecar

import (
	"errors"
	"net/http"

	"github.com/cogos-dev/coord/coord"
)

// CodeDecided: accepting a rejected handoff (or rejecting an accepted one).
const CodeDecided = "decided"

// primitiveError maps the errors of broadcasts, handoffs and checkpoints.
func primitiveError(err error, b *ErrorBody) (int, bool) {
	switch {
	case errors.Is(err, coord.ErrHandoffNotFound):
		b.Code = CodeNotFound
		return http.StatusNotFound, true
	case errors.Is(err, coord.ErrNotRecipient):
		b.Code = CodeNotRecipient
		return http.StatusForbidden, true
	case errors.Is(err, coord.ErrHandoffDecided):
		b.Code = CodeDecided
		return http.StatusConflict, true
	case errors.Is(err, coord.ErrInvalidHandoff), errors.Is(err, coord.ErrEmptyMessage),
		errors.Is(err, coord.ErrInvalidMessage), errors.Is(err, coord.ErrMessageTooLarge):
		b.Code = CodeInvalid
		return http.StatusBadRequest, true
	}
	return 0, false
}

// timeoutDetails adds who is missing to a checkpoint timeout.
func timeoutDetails(err error, b *ErrorBody) {
	var ct *coord.CheckpointTimeoutError
	if errors.As(err, &ct) {
		b.Missing, b.Arrived = ct.Missing, ct.Arrived
	}
}
