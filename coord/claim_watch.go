package coord

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/cogos-dev/coord/kvstore"
	"github.com/cogos-dev/coord/subjects"
)

// ClaimEventType says what happened to a claim.
type ClaimEventType int

const (
	// ClaimGranted: a path was claimed (created, or handed to a waiter or a
	// handoff's recipient: a new holder with a new token).
	ClaimGranted ClaimEventType = iota + 1
	// ClaimRenewed: the holder renewed its lease (or a waiter flagged it).
	ClaimRenewed
	// ClaimReleased: the holder released the claim.
	ClaimReleased
	// ClaimExpired: the lease ran out (the holder stopped renewing), an
	// operator purged the key, or it went away while the watch was
	// disconnected.
	ClaimExpired
)

func (t ClaimEventType) String() string {
	switch t {
	case ClaimGranted:
		return "granted"
	case ClaimRenewed:
		return "renewed"
	case ClaimReleased:
		return "released"
	case ClaimExpired:
		return "expired"
	}
	return fmt.Sprintf("ClaimEventType(%d)", int(t))
}

// ClaimEvent is one change to a claim.
type ClaimEvent struct {
	Type ClaimEventType
	Path string
	// Claim is the claim after a grant or renewal, and the last one seen
	// before a release or expiry (zero if the watch never saw it live).
	Claim    Claim
	Revision uint64
	Time     time.Time
}

// ClaimWatch delivers claim events until its context ends or Stop is
// called; then C is closed and Err says why.
type ClaimWatch struct {
	c    chan ClaimEvent
	stop context.CancelFunc
	done chan struct{}
	mu   sync.Mutex
	err  error
}

// C is the channel of events, closed at the end.
func (w *ClaimWatch) C() <-chan ClaimEvent { return w.c }

// Err says why C was closed: the context's error, ErrClosed, or a
// connection failure.
func (w *ClaimWatch) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// Stop ends the watch and waits for it to finish.
func (w *ClaimWatch) Stop() {
	w.stop()
	<-w.done
}

// Watch reports changes to the claims on the given paths and everything
// under them (all of the namespace when no path is given), from now on.
// Watchers on a busy path may skip superseded renewals: they see the latest
// state, not every step. Values that do not parse are logged and skipped.
func (c *Client) Watch(ctx context.Context, paths ...string) (*ClaimWatch, error) {
	var filters []string
	if len(paths) == 0 {
		f, err := subjects.ClaimFilter(c.opts.namespace)
		if err != nil {
			return nil, err
		}
		filters = []string{f}
	}
	for _, p := range paths {
		key, _, err := c.claimKey(p)
		if err != nil {
			return nil, err
		}
		filters = append(filters, key, key+".>")
	}
	wctx, stop := context.WithCancel(ctx)
	kw, err := c.claims.Watch(wctx, filters)
	if err != nil {
		stop()
		return nil, wrapNATS(err)
	}
	w := &ClaimWatch{c: make(chan ClaimEvent, 64), stop: stop, done: make(chan struct{})}
	// Listen for reconnects before returning, so none is missed.
	reconnected := c.nc.StatusChanged(nats.CONNECTED)
	if !c.goTracked(func(cctx context.Context) { c.runWatch(wctx, cctx, kw, filters, reconnected, w) }) {
		c.nc.RemoveStatusListener(reconnected)
		stop()
		_ = kw.Stop()
		return nil, ErrClosed
	}
	return w, nil
}

func (c *Client) runWatch(ctx, clientCtx context.Context, kw *kvstore.Watcher, filters []string, reconnected chan nats.Status, w *ClaimWatch) {
	defer close(w.done)
	defer close(w.c)
	defer func() { _ = kw.Stop() }()
	end := func(err error) {
		w.mu.Lock()
		w.err = err
		w.mu.Unlock()
	}
	emit := func(ev ClaimEvent) bool {
		select {
		case w.c <- ev:
			return true
		case <-ctx.Done():
			end(ctx.Err())
		case <-clientCtx.Done():
			end(ErrClosed)
		}
		return false
	}
	// nats.go's watcher notices a restarted server only after missed
	// heartbeats (about 20 s): on reconnect, watch again, replay the
	// current state and report what changed meanwhile.
	defer c.nc.RemoveStatusListener(reconnected)
	// live remembers the last claim seen on each key, so that the server's
	// expiry of an already-released key's marker is not reported as an
	// expiry, and releases can say what was released.
	live := make(map[string]watched)
	synced := false
	var seen map[string]bool     // keys present in a resync's replay
	var rewatch <-chan time.Time // set while a watch after reconnect is due
	for {
		var (
			e    kvstore.Event
			open bool
		)
		select {
		case <-ctx.Done():
			end(ctx.Err())
			return
		case <-clientCtx.Done():
			end(ErrClosed)
			return
		case <-reconnected:
			rewatch = time.After(0)
			continue
		case <-rewatch:
			// Right after a restart JetStream may not answer yet: try
			// again shortly rather than keep the stale watch.
			rewatch = nil
			// Bounded (and ended by Close), so that this loop soon serves
			// the caller again; the loop tries again after a pause.
			actx, acancel := context.WithTimeout(ctx, 3*time.Second)
			detach := context.AfterFunc(clientCtx, acancel)
			nw, err := c.claims.WatchUntil(ctx, actx, filters)
			detach()
			acancel()
			if err != nil {
				c.log.Debug().Err(err).Msg("could not watch claims again after reconnect; retrying")
				rewatch = time.After(250 * time.Millisecond)
				continue
			}
			_ = kw.Stop()
			kw, synced, seen = nw, false, make(map[string]bool)
			continue
		case raw, ok := <-kw.C():
			e, open = kvstore.Convert(raw), ok
		}
		if !open {
			switch {
			case clientCtx.Err() != nil:
				end(ErrClosed) // Close ended the watch first
			case ctx.Err() != nil:
				end(ctx.Err())
			default:
				end(fmt.Errorf("%w: claim watch ended by the server or connection", ErrUnavailable))
			}
			return
		}
		if e.InitialDone {
			synced = true
			for key, was := range live {
				if seen != nil && !seen[key] {
					// Gone while we were disconnected.
					delete(live, key)
					if !emit(ClaimEvent{Type: ClaimExpired, Path: was.claim.Path, Claim: was.claim, Revision: was.rev, Time: time.Now()}) {
						return
					}
				}
			}
			seen = nil
			continue
		}
		if seen != nil && e.Op == kvstore.OpPut {
			seen[e.Key] = true
		}
		prev := live[e.Key].rev
		ev, ok := c.claimEvent(live, e)
		if !ok || (!synced && seen == nil) || (seen != nil && e.Revision == prev) {
			continue
		}
		if !emit(ev) {
			return
		}
	}
}

// watched is what a claim watch remembers of a key.
type watched struct {
	claim Claim
	rev   uint64
}

// claimEvent turns a KV change into a claim event, updating live.
func (c *Client) claimEvent(live map[string]watched, e kvstore.Event) (ClaimEvent, bool) {
	_, path, err := subjects.ParseClaimKey(e.Key)
	if err != nil {
		c.log.Warn().Err(err).Str("key", e.Key).Msg("skipping claim event with an unreadable key")
		return ClaimEvent{}, false
	}
	ev := ClaimEvent{Path: path, Revision: e.Revision, Time: e.Created}
	if e.Op != kvstore.OpPut {
		prev, was := live[e.Key]
		if !was {
			return ClaimEvent{}, false // marker of a key already gone
		}
		delete(live, e.Key)
		ev.Claim = prev.claim
		ev.Type = ClaimReleased
		if e.Op != kvstore.OpDelete {
			ev.Type = ClaimExpired
		}
		return ev, true
	}
	rec, err := decodeClaim(e.Key, e.Value)
	if err != nil {
		c.log.Warn().Err(err).Str("key", e.Key).Msg("skipping unreadable claim")
		return ClaimEvent{}, false
	}
	rec.Path = path
	cl := c.claimFromRecord(rec, e.Entry)
	prev, was := live[e.Key]
	live[e.Key] = watched{claim: cl, rev: e.Revision}
	ev.Claim = cl
	ev.Type = ClaimGranted
	if was && prev.claim.Token == cl.Token {
		ev.Type = ClaimRenewed
	}
	return ev, true
}
