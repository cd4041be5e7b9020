package coord

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cogos-dev/coord/kvstore"
)

// renew writes the claim again at its current revision with a fresh TTL. A
// revision mismatch is resolved by reading the key: still this lease (a
// waiter flagged it, or another client of this agent renewed it) means adopt
// the new revision and retry; anything else means the claim was lost.
func (l *lease) renew(ctx context.Context) error {
	for attempt := 0; attempt < 8; attempt++ {
		l.mu.Lock()
		rev, rec, stopped := l.rev, l.rec, l.stopped
		l.mu.Unlock()
		if stopped {
			return fmt.Errorf("%w: %s", ErrClaimLost, rec.Path)
		}
		sent := time.Now()
		nrev, err := l.c.claims.Update(ctx, l.key, rec.encode(), rev, rec.ttl())
		if err == nil {
			l.mu.Lock()
			if l.rev == rev {
				l.rev = nrev
				l.deadline = sent.Add(rec.ttl())
			}
			l.mu.Unlock()
			return nil
		}
		if !errors.Is(err, kvstore.ErrRevisionMismatch) {
			return wrapNATS(err)
		}
		e, err := l.c.claims.Get(ctx, l.key)
		if errors.Is(err, kvstore.ErrNotFound) {
			err = fmt.Errorf("%w: %s expired or was deleted before it was renewed", ErrClaimLost, rec.Path)
			l.lose(err)
			return err
		}
		if err != nil {
			return wrapNATS(err)
		}
		cur, derr := decodeClaim(l.key, e.Value)
		if derr != nil || cur.Lease != rec.Lease {
			err = fmt.Errorf("%w: %s is now held by %s", ErrClaimLost, rec.Path, cur.Agent)
			l.lose(err)
			return err
		}
		l.mu.Lock()
		if l.rev == rev {
			l.rev = e.Revision
			l.rec.Waiters = cur.Waiters
		}
		l.mu.Unlock()
	}
	return fmt.Errorf("coord: renew %s: too much contention", l.rec.Path)
}

// keeper renews every lease of a client at a third of its TTL, and declares
// a lease lost once it could not be renewed before its deadline.
type keeper struct {
	c    *Client
	mu   sync.Mutex
	h    leaseHeap
	wake chan struct{}
	sem  chan struct{} // bounds renewals in flight
}

func newKeeper(c *Client) *keeper {
	return &keeper{c: c, wake: make(chan struct{}, 1), sem: make(chan struct{}, 64)}
}

func renewInterval(l *lease) time.Duration { return l.rec.ttl() / 3 }

// renewTick aligns renewal times to a shared grid (rounding down, so a
// renewal is never later than a third of its TTL): renewals of many claims,
// across the clients of a process, then go out together, and their writes
// share flushes and wake-ups instead of costing one each.
// The grid is a second for leases renewed every few seconds or more, and a
// quarter second for short ones (so rounding down costs little).
const renewTick, shortRenewTick = time.Second, 250 * time.Millisecond

func nextRenewal(l *lease, from time.Time) time.Time {
	every := renewInterval(l)
	tick := renewTick
	if every < 4*renewTick {
		tick = shortRenewTick
	}
	at := from.Add(every)
	if aligned := at.Truncate(tick); aligned.After(from) {
		return aligned
	}
	return at
}

func (k *keeper) add(l *lease) {
	k.mu.Lock()
	l.mu.Lock()
	l.next = nextRenewal(l, time.Now())
	l.mu.Unlock()
	if l.index < 0 || l.index >= len(k.h) || k.h[l.index] != l {
		heap.Push(&k.h, l)
	} else {
		heap.Fix(&k.h, l.index)
	}
	// The keeper's timer only needs moving if this lease is now the first
	// due: most claims are released long before their first renewal, and a
	// wake-up per claim is measurable on a hot claim+release path.
	first := k.h[0] == l
	k.mu.Unlock()
	if first {
		k.signal()
	}
}

func (k *keeper) schedule(l *lease, at time.Time) {
	k.mu.Lock()
	l.mu.Lock()
	stopped := l.stopped
	l.next = at
	l.mu.Unlock()
	if !stopped && (l.index < 0 || l.index >= len(k.h) || k.h[l.index] != l) {
		heap.Push(&k.h, l)
	}
	k.mu.Unlock()
	k.signal()
}

func (k *keeper) remove(l *lease) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if l.index >= 0 && l.index < len(k.h) && k.h[l.index] == l {
		heap.Remove(&k.h, l.index)
	}
}

func (k *keeper) signal() {
	select {
	case k.wake <- struct{}{}:
	default:
	}
}

func (k *keeper) run(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		k.mu.Lock()
		wait := time.Hour
		if len(k.h) > 0 {
			wait = time.Until(k.h[0].next)
		}
		k.mu.Unlock()
		timer.Reset(max(wait, 0))
		select {
		case <-ctx.Done():
			return
		case <-k.wake:
			continue
		case <-timer.C:
		}
		now := time.Now()
		var due []*lease
		k.mu.Lock()
		for len(k.h) > 0 && !k.h[0].next.After(now) {
			due = append(due, heap.Pop(&k.h).(*lease))
		}
		k.mu.Unlock()
		for _, l := range due {
			select {
			case k.sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			l := l
			if !k.c.goTracked(func(ctx context.Context) {
				defer func() { <-k.sem }()
				k.renewOne(ctx, l)
			}) {
				return
			}
		}
	}
}

func (k *keeper) renewOne(ctx context.Context, l *lease) {
	l.mu.Lock()
	deadline, stopped := l.deadline, l.stopped
	l.mu.Unlock()
	if stopped {
		return
	}
	if !time.Now().Before(deadline) {
		l.lose(fmt.Errorf("%w: %s: lease ran out before it could be renewed", ErrClaimLost, l.rec.Path))
		return
	}
	rctx, cancel := context.WithDeadline(ctx, deadline)
	err := l.renew(rctx)
	cancel()
	if err == nil {
		k.schedule(l, nextRenewal(l, time.Now()))
		return
	}
	if l.Err() != nil || ctx.Err() != nil {
		return
	}
	l.mu.Lock()
	deadline = l.deadline
	l.mu.Unlock()
	if !time.Now().Before(deadline) {
		l.lose(fmt.Errorf("%w: %s: lease ran out before it could be renewed: %v", ErrClaimLost, l.rec.Path, err))
		return
	}
	l.c.log.Warn().Err(err).Str("path", l.rec.Path).Msg("renewal failed; retrying")
	retry := time.Now().Add(min(renewInterval(l)/4, 500*time.Millisecond))
	k.schedule(l, minTime(retry, deadline))
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// leaseHeap orders leases by next renewal.
type leaseHeap []*lease

func (h leaseHeap) Len() int           { return len(h) }
func (h leaseHeap) Less(i, j int) bool { return h[i].next.Before(h[j].next) }
func (h leaseHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *leaseHeap) Push(x any) {
	l := x.(*lease)
	l.index = len(*h)
	*h = append(*h, l)
}
func (h *leaseHeap) Pop() any {
	old := *h
	l := old[len(old)-1]
	old[len(old)-1] = nil
	l.index = -1
	*h = old[:len(old)-1]
	return l
}
