package coord

import (
	"errors"
	"fmt"

	"github.com/cogos-dev/coord/kvstore"
	"github.com/cogos-dev/coord/subjects"
)

// Errors returned by coord. Each is matched with errors.Is; the returned
// error wraps it with the path, agent or name concerned.
var (
	// ErrClaimed: the path is held by another agent. The error is a
	// *ClaimedError naming the owner.
	ErrClaimed = errors.New("coord: path already claimed")
	// ErrNotOwner: a release, renewal or transfer of a claim the caller does
	// not hold (another agent's, or an older claim of its own).
	ErrNotOwner = errors.New("coord: not the owner of the claim")
	// ErrNotClaimed: Owner or Get on a path nobody holds.
	ErrNotClaimed = errors.New("coord: path not claimed")
	// ErrClaimLost: a held claim could not be renewed before its lease ran
	// out, or was taken over (purged by an operator, expired during a
	// partition). Reported by Claim.Err once Claim.Lost is closed.
	ErrClaimLost = errors.New("coord: claim lost")
	// ErrTimeout: a wait (Acquire, WaitCheckpoint) ran out of time.
	ErrTimeout = errors.New("coord: timed out")
	// ErrBadValue: a value in a bucket or stream that does not parse
	// (written by hand, or by an incompatible version).
	ErrBadValue = errors.New("coord: unreadable value")
	// ErrClosed: the client was closed.
	ErrClosed = errors.New("coord: client closed")
	// ErrUnavailable: no NATS server with JetStream answered in time.
	ErrUnavailable = errors.New("coord: NATS JetStream unavailable")
	// ErrInvalidOption: an option with an out-of-range or conflicting value.
	ErrInvalidOption = errors.New("coord: invalid option")

	// Validation errors, from package subjects.
	ErrInvalidPath      = subjects.ErrInvalidPath
	ErrInvalidAgent     = subjects.ErrInvalidAgent
	ErrInvalidNamespace = subjects.ErrInvalidNamespace
	ErrInvalidChannel   = subjects.ErrInvalidChannel
	ErrInvalidName      = subjects.ErrInvalidName
)

// ClaimedError is returned when a path is held by another agent.
type ClaimedError struct {
	Path  string
	Owner string
	// Claim is the current holder's claim, as stored.
	Claim Claim

	entry kvstore.Entry // the revision read, for a waiter's first look
}

func (e *ClaimedError) Error() string {
	return fmt.Sprintf("coord: %s is claimed by %s", e.Path, e.Owner)
}

// Is makes errors.Is(err, ErrClaimed) true.
func (e *ClaimedError) Is(target error) bool { return target == ErrClaimed }

// wrapNATS maps kvstore's availability errors to ErrUnavailable, keeping
// the cause in the chain.
func wrapNATS(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, kvstore.ErrUnavailable) && !errors.Is(err, ErrUnavailable) {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return err
}
