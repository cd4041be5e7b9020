package coord

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/cogos-dev/coord/kvstore"
	"github.com/cogos-dev/coord/subjects"
)

// Claim is exclusive, lease-based ownership of a resource path. Its JSON
// form keeps the seed's fields (path, agent, reason, claimed_at) and adds the
// lease and the fencing token.
//
// A Claim returned by TryAcquire or Acquire is held by this client, which
// renews it until Release or Close; Lost reports the moment it stops being
// held. Claims from List, Get or a ClaimedError only describe a holder.
type Claim struct {
	Path      string    `json:"path"`
	Agent     string    `json:"agent"`
	Reason    string    `json:"reason"`
	ClaimedAt time.Time `json:"claimed_at"`
	Namespace string    `json:"namespace,omitempty"`
	// Token is the fencing token: the KV revision at which this holder was
	// granted the claim. It strictly increases across successive holders of
	// a path; pass it to the resource so it can refuse a stale holder.
	Token uint64 `json:"token"`
	// TTLSeconds is the lease: a holder that stops renewing loses the claim
	// this long after its last renewal.
	TTLSeconds int64 `json:"ttl_seconds"`
	// ExpiresAt is when the lease runs out unless renewed (as last known).
	ExpiresAt time.Time `json:"expires_at"`

	lease *lease
}

// TTL is the claim's lease duration.
func (c *Claim) TTL() time.Duration { return time.Duration(c.TTLSeconds) * time.Second }

// Held reports whether this client still holds the claim.
func (c *Claim) Held() bool {
	if c.lease == nil {
		return false
	}
	select {
	case <-c.lease.lost:
		return false
	default:
		return true
	}
}

// Lost is closed when this client stops holding the claim: released, lease
// run out without renewal, taken over, or the client closed. It is nil for
// claims this client does not hold.
func (c *Claim) Lost() <-chan struct{} {
	if c.lease == nil {
		return nil
	}
	return c.lease.lost
}

// Err says why Lost was closed (nil while held, or after a clean Release).
func (c *Claim) Err() error {
	if c.lease == nil {
		return ErrNotOwner
	}
	return c.lease.Err()
}

// Revision is the claim's current KV revision (it moves on every renewal;
// Token does not).
func (c *Claim) Revision() uint64 {
	if c.lease == nil {
		return 0
	}
	c.lease.mu.Lock()
	defer c.lease.mu.Unlock()
	return c.lease.rev
}

// Release releases the claim; see Client.Release.
func (c *Claim) Release(ctx context.Context) error {
	if c.lease == nil {
		return fmt.Errorf("%w: %s is not held by this client", ErrNotOwner, c.Path)
	}
	return c.lease.c.Release(ctx, c)
}

// claimRecord is the JSON stored under a claim key.
type claimRecord struct {
	Path       string    `json:"path"`
	Agent      string    `json:"agent"`
	Reason     string    `json:"reason"`
	ClaimedAt  time.Time `json:"claimed_at"`
	TTLSeconds int64     `json:"ttl_seconds"`
	// Client is the client instance that keeps the lease alive.
	Client string `json:"client,omitempty"`
	// Lease identifies one holding: a grant, renewed, until released. A
	// newer claim of the same agent has a new lease.
	Lease string `json:"lease"`
	// Token is the revision of the grant (0: this revision is the grant).
	Token uint64 `json:"token,omitempty"`
	// Waiters is set by a blocked Acquire so the holder's release looks for
	// the next waiter instead of just deleting the key.
	Waiters bool `json:"waiters,omitempty"`
}

func (r claimRecord) ttl() time.Duration { return time.Duration(r.TTLSeconds) * time.Second }

func (r claimRecord) token(rev uint64) uint64 {
	if r.Token != 0 {
		return r.Token
	}
	return rev
}

func (r claimRecord) encode() []byte {
	if b, ok := r.appendFast(make([]byte, 0, 256)); ok {
		return b
	}
	b, err := json.Marshal(r)
	if err != nil {
		// claimRecord has only plain fields: Marshal cannot fail.
		panic(err)
	}
	return b
}

// decodeClaim parses a stored claim; a value that does not parse (or lacks
// the fields every claim has) gives ErrBadValue naming the key.
func decodeClaim(key string, v []byte) (claimRecord, error) {
	r, ok := parseClaimRecord(v)
	if ok && r.Agent != "" && r.Lease != "" && r.TTLSeconds > 0 {
		return r, nil
	}
	r = claimRecord{}
	if err := json.Unmarshal(v, &r); err != nil {
		return r, fmt.Errorf("%w: claim %s: %v", ErrBadValue, key, err)
	}
	if r.Agent == "" || r.Lease == "" || r.TTLSeconds <= 0 {
		return r, fmt.Errorf("%w: claim %s: missing agent, lease or ttl", ErrBadValue, key)
	}
	return r, nil
}

func (c *Client) claimFromRecord(r claimRecord, e kvstore.Entry) Claim {
	return Claim{
		Path:       r.Path,
		Agent:      r.Agent,
		Reason:     r.Reason,
		ClaimedAt:  r.ClaimedAt,
		Namespace:  c.opts.namespace,
		Token:      r.token(e.Revision),
		TTLSeconds: r.TTLSeconds,
		ExpiresAt:  e.Created.Add(r.ttl()),
	}
}

// ClaimOption adjusts one acquire.
type ClaimOption func(*claimOptions) error

type claimOptions struct {
	reason string
	ttl    time.Duration
}

// WithReason records why the claim is held.
func WithReason(reason string) ClaimOption {
	return func(o *claimOptions) error {
		if len(reason) > maxReasonBytes {
			return fmt.Errorf("%w: reason longer than %d bytes", ErrInvalidOption, maxReasonBytes)
		}
		o.reason = reason
		return nil
	}
}

// WithTTL sets this claim's lease (whole seconds, 1s to 24h).
func WithTTL(d time.Duration) ClaimOption {
	return func(o *claimOptions) error {
		if err := checkTTL(d); err != nil {
			return err
		}
		o.ttl = d
		return nil
	}
}

const maxReasonBytes = 4096

func (c *Client) claimOpts(opts []ClaimOption) (claimOptions, error) {
	o := claimOptions{ttl: c.opts.claimTTL}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return o, err
		}
	}
	o.ttl = roundUpSecond(o.ttl)
	return o, nil
}

func roundUpSecond(d time.Duration) time.Duration {
	if r := d % time.Second; r != 0 {
		d += time.Second - r
	}
	return d
}

// claimKey validates path and returns its key and cleaned form.
func (c *Client) claimKey(path string) (key, clean string, err error) {
	return subjects.ClaimKey(c.opts.namespace, path)
}

// TryAcquire claims path if it is free, or renews it if this agent already
// holds it (the seed's re-claim rule). If another agent holds it, the error
// is a *ClaimedError (errors.Is(err, ErrClaimed)) naming the owner.
func (c *Client) TryAcquire(ctx context.Context, path string, opts ...ClaimOption) (*Claim, error) {
	key, clean, err := c.claimKey(path)
	if err != nil {
		return nil, err
	}
	o, err := c.claimOpts(opts)
	if err != nil {
		return nil, err
	}
	return c.tryAcquire(ctx, key, clean, o)
}

func (c *Client) tryAcquire(ctx context.Context, key, clean string, o claimOptions) (*Claim, error) {
	if c.isClosed() {
		return nil, ErrClosed
	}
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	rec := claimRecord{
		Path:       clean,
		Agent:      c.opts.agent,
		Reason:     o.reason,
		ClaimedAt:  time.Now().UTC(),
		TTLSeconds: int64(o.ttl / time.Second),
		Client:     c.id,
		Lease:      uuid.NewString(),
	}
	for attempt := 0; attempt < 16; attempt++ {
		hint := c.hint(key)
		if attempt == 0 && c.seenHeld(key) {
			// Recently held by someone else: a read answers "claimed by X"
			// in one round trip (a failing create would need a read too),
			// and tells a create over a marker which revision to expect.
			e, err := c.claims.Last(ctx, key)
			switch {
			case errors.Is(err, kvstore.ErrNotFound):
				hint = 0
			case err != nil:
				return nil, wrapNATS(err)
			case e.Live():
				cl, err, done := c.onHeld(ctx, key, clean, e, o)
				if done {
					return cl, err
				}
				continue
			default:
				hint = e.Revision
			}
		}
		sent := time.Now()
		rev, err := c.claims.CreateAfter(ctx, key, rec.encode(), o.ttl, hint)
		if err == nil {
			return c.hold(key, rev, rec, sent), nil
		}
		if errors.Is(err, kvstore.ErrRevisionMismatch) {
			// CreateAfter gave up: the key changed hands under every one
			// of its attempts (a hot path with zero hold times). Try again.
			continue
		}
		var exists *kvstore.ExistsError
		if !errors.As(err, &exists) {
			return nil, wrapNATS(err)
		}
		cl, err, done := c.onHeld(ctx, key, clean, exists.Entry, o)
		if done {
			return cl, err
		}
	}
	// Every attempt found the path held or changing hands: to the caller
	// (and to Acquire, which then queues) it is claimed.
	return nil, fmt.Errorf("%w: %s kept changing hands; gave up after %d attempts", ErrClaimed, clean, 16)
}

// onHeld answers a try that found the key live: ClaimedError naming
// another agent, or a renewal if this agent holds it (the seed's re-claim
// rule). done is false when the key moved on and the try should go again.
func (c *Client) onHeld(ctx context.Context, key, clean string, e kvstore.Entry, o claimOptions) (cl *Claim, err error, done bool) {
	cur, err := decodeClaim(key, e.Value)
	if err != nil {
		return nil, err, true
	}
	if cur.Agent != c.opts.agent {
		c.markHeld(key)
		return nil, &ClaimedError{Path: clean, Owner: cur.Agent, Claim: c.claimFromRecord(cur, e), entry: e}, true
	}
	cl, err = c.reclaim(ctx, key, e, cur, o)
	if errors.Is(err, kvstore.ErrRevisionMismatch) {
		return nil, nil, false
	}
	return cl, err, true
}

// holdsLease reports whether this client holds key under lease.
func (c *Client) holdsLease(key, lease string) bool {
	c.mu.Lock()
	l := c.leases[key]
	c.mu.Unlock()
	return l != nil && l.leaseID() == lease
}

// reclaim renews a claim this agent holds (perhaps through another client,
// such as the CLI and its sidecar) and takes over keeping it alive.
func (c *Client) reclaim(ctx context.Context, key string, e kvstore.Entry, cur claimRecord, o claimOptions) (*Claim, error) {
	c.mu.Lock()
	l := c.leases[key]
	c.mu.Unlock()
	if l != nil && l.leaseID() == cur.Lease {
		// This client holds it: renew now with the (possibly new) TTL and reason.
		l.mu.Lock()
		l.rec.Reason = o.reason
		l.rec.TTLSeconds = int64(o.ttl / time.Second)
		l.mu.Unlock()
		if err := l.renew(ctx); err != nil {
			return nil, err
		}
		return l.claim(), nil
	}
	// Another client's holding (or a grant to a wait of ours that has
	// moved on) becomes a new holding under a new lease, with the same
	// token: whoever kept the old lease alive, or would pass it on as a
	// departed waiter's, finds it gone instead of acting on ours.
	next := cur
	next.Token = cur.token(e.Revision)
	next.Lease = uuid.NewString()
	next.Client = c.id
	next.Reason = o.reason
	next.TTLSeconds = int64(o.ttl / time.Second)
	sent := time.Now()
	rev, err := c.claims.Update(ctx, key, next.encode(), e.Revision, o.ttl)
	if err != nil {
		return nil, wrapNATS(err)
	}
	return c.hold(key, rev, next, sent), nil
}

// hold registers a lease this client now holds and starts keeping it alive.
func (c *Client) hold(key string, rev uint64, rec claimRecord, sent time.Time) *Claim {
	c.mu.Lock()
	delete(c.held, key)
	c.mu.Unlock()
	l := &lease{
		c:        c,
		key:      key,
		rev:      rev,
		rec:      rec,
		deadline: sent.Add(rec.ttl()),
		lost:     make(chan struct{}),
		index:    -1,
	}
	if rec.Token == 0 {
		l.rec.Token = rev
	}
	c.mu.Lock()
	old := c.leases[key]
	c.leases[key] = l
	c.mu.Unlock()
	if old != nil && old != l {
		old.lose(fmt.Errorf("%w: %s was claimed again", ErrClaimLost, rec.Path))
	}
	c.keep.add(l)
	return l.claim()
}

// Release gives the claim up: to the first blocked Acquire if one waits
// (with no moment in which a third agent could take it), else by deleting
// it. It is revision-checked: a claim this client no longer holds is never
// touched. Releasing a claim that is already gone (expired, released) is not
// an error; one that another holder has since taken gives ErrNotOwner.
func (c *Client) Release(ctx context.Context, cl *Claim) error {
	if cl == nil || cl.lease == nil || cl.lease.c != c {
		return fmt.Errorf("%w: claim not held by this client", ErrNotOwner)
	}
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	l := cl.lease
	if !l.stop() {
		// Lost or released already.
		if l.released() {
			return nil
		}
		return c.releaseGone(ctx, l)
	}
	c.forget(l)
	l.mu.Lock()
	rev, rec := l.rev, l.rec
	l.mu.Unlock()
	next, after := l.takeSuccessor(ctx)
	err := c.passOn(ctx, l.key, rev, rec, passOptions{next: next, after: after})
	switch {
	case err == nil:
		l.finish(errReleased)
	case errors.Is(err, ErrNotOwner):
		// It had been taken over before we got to release it.
		l.finish(fmt.Errorf("%w: %w", ErrClaimLost, err))
	default:
		// Unknown outcome (server unreachable): the lease is no longer
		// renewed, so it runs out within its TTL if the release did not land.
		l.finish(fmt.Errorf("%w: release did not complete: %w", ErrClaimLost, err))
	}
	return err
}

// releaseGone answers Release on a lease that was already lost: nil if the
// path is free, ErrNotOwner if someone else holds it.
func (c *Client) releaseGone(ctx context.Context, l *lease) error {
	e, err := c.claims.Get(ctx, l.key)
	if errors.Is(err, kvstore.ErrNotFound) {
		return nil
	}
	if err != nil {
		return wrapNATS(err)
	}
	if rec, derr := decodeClaim(l.key, e.Value); derr == nil && rec.Lease == l.leaseID() {
		return c.passOn(ctx, l.key, e.Revision, rec, passOptions{})
	}
	return fmt.Errorf("%w: %s was lost (%v) and is held by another lease now", ErrNotOwner, l.rec.Path, l.Err())
}

// ReleasePath releases this agent's claim on path, whichever of the agent's
// clients holds it (the seed's ReleaseClaim). A path nobody holds is not an
// error; one held by another agent gives ErrNotOwner.
func (c *Client) ReleasePath(ctx context.Context, path string) error {
	key, _, err := c.claimKey(path)
	if err != nil {
		return err
	}
	c.mu.Lock()
	l := c.leases[key]
	c.mu.Unlock()
	if l != nil {
		return c.Release(ctx, l.claim())
	}
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	for attempt := 0; attempt < 16; attempt++ {
		e, err := c.claims.Get(ctx, key)
		if errors.Is(err, kvstore.ErrNotFound) {
			return nil
		}
		if err != nil {
			return wrapNATS(err)
		}
		rec, err := decodeClaim(key, e.Value)
		if err != nil {
			return err
		}
		if rec.Agent != c.opts.agent {
			return fmt.Errorf("%w: %s is held by %s", ErrNotOwner, rec.Path, rec.Agent)
		}
		err = c.passOn(ctx, key, e.Revision, rec, passOptions{})
		if errors.Is(err, ErrNotOwner) {
			continue // it changed hands under us: look again
		}
		return err
	}
	return fmt.Errorf("coord: release %s: too much contention, gave up", path)
}

// Get returns the current claim on path, or ErrNotClaimed.
func (c *Client) Get(ctx context.Context, path string) (Claim, error) {
	key, clean, err := c.claimKey(path)
	if err != nil {
		return Claim{}, err
	}
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	e, err := c.claims.Get(ctx, key)
	if errors.Is(err, kvstore.ErrNotFound) {
		return Claim{}, fmt.Errorf("%w: %s", ErrNotClaimed, clean)
	}
	if err != nil {
		return Claim{}, wrapNATS(err)
	}
	rec, err := decodeClaim(key, e.Value)
	if err != nil {
		return Claim{}, err
	}
	return c.claimFromRecord(rec, e), nil
}

// Owner returns the agent holding path, or ErrNotClaimed.
func (c *Client) Owner(ctx context.Context, path string) (string, error) {
	cl, err := c.Get(ctx, path)
	if err != nil {
		return "", err
	}
	return cl.Agent, nil
}

// IsClaimed reports whether anyone holds path.
func (c *Client) IsClaimed(ctx context.Context, path string) (bool, error) {
	_, err := c.Get(ctx, path)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, ErrNotClaimed):
		return false, nil
	}
	return false, err
}

// List returns every claim in the namespace, sorted by key, in one pass over
// the bucket. A value that does not parse is logged and skipped.
func (c *Client) List(ctx context.Context) ([]Claim, error) {
	claims, _, err := c.ListChecked(ctx)
	return claims, err
}

// ListChecked is List that also returns the errors of the entries it
// skipped (each wraps ErrBadValue and names the key).
func (c *Client) ListChecked(ctx context.Context) ([]Claim, []error, error) {
	filter, err := subjects.ClaimFilter(c.opts.namespace)
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	prefix := filter[:len(filter)-1] // "<ns>."
	var out []Claim
	var bad []error
	// Decode while the watch delivers: the work overlaps the transfer.
	err = c.claims.ListFunc(ctx, filter, func(e kvstore.Entry) {
		rec, err := decodeClaim(e.Key, e.Value)
		if err != nil {
			c.log.Warn().Err(err).Str("key", e.Key).Msg("skipping unreadable claim")
			bad = append(bad, err)
			return
		}
		// The key is authoritative for the path: a record that names
		// another path (written by hand) is listed under its key's.
		if rec.Path == "" || prefix+subjects.PathTokens(rec.Path) != e.Key {
			_, p, perr := subjects.ParseClaimKey(e.Key)
			if perr != nil {
				err := fmt.Errorf("%w: claim key %s: %v", ErrBadValue, e.Key, perr)
				c.log.Warn().Err(err).Msg("skipping claim with an unreadable key")
				bad = append(bad, err)
				return
			}
			rec.Path = p
		}
		out = append(out, c.claimFromRecord(rec, e))
	})
	if err != nil {
		return nil, nil, wrapNATS(err)
	}
	return out, bad, nil
}

// Held returns the claims this client holds and keeps alive.
func (c *Client) Held() []*Claim {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]*Claim, 0, len(c.leases))
	for _, l := range c.leases {
		out = append(out, l.claim())
	}
	return out
}

// forget drops a lease from the client's table (if it is still the one there).
func (c *Client) forget(l *lease) {
	c.mu.Lock()
	if c.leases[l.key] == l {
		delete(c.leases, l.key)
	}
	c.mu.Unlock()
}

// hint is the revision of the marker this client last left on key (0: none
// known), so that re-acquiring costs one round trip.
func (c *Client) hint(key string) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hints[key]
}

const maxHints = 4096

func (c *Client) setHint(key string, rev uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.hints) >= maxHints {
		clear(c.hints)
	}
	c.hints[key] = rev
	delete(c.held, key)
}

// heldFor is how long a key seen held by another agent is assumed to be
// held still, so that a try starts with a read rather than a create.
const heldFor = 10 * time.Second

// markHeld notes that key is held by another agent (seen, or handed over).
func (c *Client) markHeld(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.held == nil || len(c.held) >= maxHints {
		c.held = make(map[string]time.Time)
	}
	c.held[key] = time.Now()
}

func (c *Client) seenHeld(key string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	at, ok := c.held[key]
	return ok && time.Since(at) < heldFor
}

// errReleased is the lease's end state after a clean Release.
var errReleased = errors.New("coord: claim released")

// lease is a claim this client holds and renews.
type lease struct {
	c   *Client
	key string

	mu       sync.Mutex
	rev      uint64
	rec      claimRecord
	deadline time.Time // the lease surely ran out by then unless renewed
	next     time.Time // next renewal
	index    int       // in the keeper's heap; -1 when not scheduled
	err      error
	stopped  bool
	lost     chan struct{}
	// successor is the next waiter, looked up ahead of the release.
	successor chan waiterRef
	// after is the waiter after the successor, looked up ahead too (when
	// the successor came with the grant), for the successor's grant note.
	after chan *nextRef
}

func (l *lease) leaseID() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.rec.Lease
}

func (l *lease) claim() *Claim {
	l.mu.Lock()
	defer l.mu.Unlock()
	return &Claim{
		Path:       l.rec.Path,
		Agent:      l.rec.Agent,
		Reason:     l.rec.Reason,
		ClaimedAt:  l.rec.ClaimedAt,
		Namespace:  l.c.opts.namespace,
		Token:      l.rec.Token,
		TTLSeconds: l.rec.TTLSeconds,
		ExpiresAt:  l.deadline,
		lease:      l,
	}
}

// Err is nil while the lease is held.
func (l *lease) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if errors.Is(l.err, errReleased) {
		return nil
	}
	return l.err
}

// released reports whether the lease ended in a clean Release.
func (l *lease) released() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return errors.Is(l.err, errReleased)
}

// stop takes the lease out of keepalive for a release; false if it had
// already ended.
func (l *lease) stop() bool {
	l.mu.Lock()
	if l.stopped {
		l.mu.Unlock()
		return false
	}
	l.stopped = true
	l.mu.Unlock()
	l.c.keep.remove(l)
	return true
}

// lose ends the lease with err and tells the holder.
func (l *lease) lose(err error) {
	l.mu.Lock()
	l.stopped = true
	l.mu.Unlock()
	l.c.keep.remove(l)
	l.c.forget(l)
	l.finish(err)
}

func (l *lease) finish(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return
	}
	l.err = err
	close(l.lost)
	if !errors.Is(err, errReleased) {
		l.c.log.Warn().Err(err).Str("path", l.rec.Path).Msg("claim lost")
	}
}
