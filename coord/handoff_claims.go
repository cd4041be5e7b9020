package coord

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/cogos-dev/coord/kvstore"
)

// handoffLeaseSpace names the leases a handoff creates: the lease of path
// after accepting handoff id is a name-based UUID of (id, path), so an
// accept that is retried after a failure recognises its own earlier grant.
var handoffLeaseSpace = uuid.MustParse("6d6e1c3a-58a4-4c55-9a43-2b1f1f0c9e27")

func handoffLease(id, path string) string {
	return uuid.NewSHA1(handoffLeaseSpace, []byte(id+"\x00"+path)).String()
}

// heldLeases checks that this agent holds the claim on each path (through
// this client or another of its clients) and returns the cleaned paths,
// without duplicates, and the lease of each as stored now.
func (c *Client) heldLeases(ctx context.Context, paths []string) (clean, leases []string, err error) {
	seen := make(map[string]bool, len(paths))
	for _, p := range paths {
		key, cp, err := c.claimKey(p)
		if err != nil {
			return nil, nil, err
		}
		if seen[key] {
			continue
		}
		seen[key] = true
		e, err := c.claims.Get(ctx, key)
		if errors.Is(err, kvstore.ErrNotFound) {
			return nil, nil, fmt.Errorf("%w: %s is not claimed, so it cannot be handed off", ErrNotOwner, cp)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("coord: handoff claim %s: %w", cp, wrapNATS(err))
		}
		rec, err := decodeClaim(key, e.Value)
		if err != nil {
			return nil, nil, err
		}
		if rec.Agent != c.opts.agent {
			return nil, nil, fmt.Errorf("%w: %s is held by %s, so %s cannot hand it off", ErrNotOwner, cp, rec.Agent, c.opts.agent)
		}
		clean = append(clean, cp)
		leases = append(leases, rec.Lease)
	}
	return clean, leases, nil
}

// transferClaims moves each claim of an accepted handoff from the sender's
// lease to a new lease of this client, with one revision-checked write per
// path: there is no instant in which the path is free. It returns the paths
// it could not move because the sender's lease is gone. An error (the
// server did not answer) means the accept must not be recorded yet;
// retrying it is safe.
func (c *Client) transferClaims(ctx context.Context, h handoffRecord) ([]string, error) {
	var lost []string
	for i, p := range h.Claims {
		ok, err := c.transferClaim(ctx, h.ID, p, h.Leases[i])
		if err != nil {
			return nil, err
		}
		if !ok {
			lost = append(lost, p)
		}
	}
	return lost, nil
}

func (c *Client) transferClaim(ctx context.Context, id, path, from string) (bool, error) {
	key, _, err := c.claimKey(path)
	if err != nil {
		return false, nil // not a path this namespace can hold: nothing to move
	}
	to := handoffLease(id, path)
	ttl := roundUpSecond(c.opts.claimTTL)
	for range 16 {
		e, err := c.claims.Get(ctx, key)
		if errors.Is(err, kvstore.ErrNotFound) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("coord: handoff %s: moving claim %s: %w", id, path, wrapNATS(err))
		}
		cur, err := decodeClaim(key, e.Value)
		if err != nil {
			return false, nil
		}
		switch cur.Lease {
		case to:
			// An earlier try of this accept moved it already.
			c.adopt(key, e, cur)
			return true, nil
		case from:
		default:
			return false, nil
		}
		next := claimRecord{
			Path:       cur.Path,
			Agent:      c.opts.agent,
			Reason:     cur.Reason,
			ClaimedAt:  time.Now().UTC(),
			TTLSeconds: int64(ttl / time.Second),
			Client:     c.id,
			Lease:      to,
			Waiters:    cur.Waiters,
		}
		sent := time.Now()
		rev, err := c.claims.Update(ctx, key, next.encode(), e.Revision, ttl)
		if errors.Is(err, kvstore.ErrRevisionMismatch) {
			continue // the sender renewed meanwhile: look again
		}
		if err != nil {
			if ctx.Err() != nil {
				return false, fmt.Errorf("coord: handoff %s: moving claim %s: %w", id, path, wrapNATS(err))
			}
			continue // the write may have happened: the next look tells
		}
		c.hold(key, rev, next, sent)
		return true, nil
	}
	return false, fmt.Errorf("coord: handoff %s: moving claim %s: too much contention", id, path)
}

// adopt starts keeping alive a lease granted by an earlier try of an accept,
// unless this client keeps it already.
func (c *Client) adopt(key string, e kvstore.Entry, rec claimRecord) {
	c.mu.Lock()
	l := c.leases[key]
	c.mu.Unlock()
	if l != nil && l.leaseID() == rec.Lease {
		return
	}
	rec.Client = c.id
	c.hold(key, e.Revision, rec, e.Created)
}
