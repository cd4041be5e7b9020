package coord

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sync"

	"github.com/nats-io/nats.go"
)

// refusals routes the server's refusals of publishes (permission
// violations, which nats.go reports only to the connection's error
// handler) to the calls waiting on those subjects, so that a call outside
// the user's permissions fails at once with ErrPermissionDenied instead of
// waiting for its deadline. It is installed on connections the client
// opens itself.
type refusals struct {
	mu      sync.Mutex
	waiting map[string]map[*refusalWait]struct{}
}

type refusalWait struct {
	cancel context.CancelCauseFunc
}

var publishRefusedRe = regexp.MustCompile(`Publish to "(\S+)"`)

// watchRefusals chains a handler in front of the connection's own.
func (c *Client) watchRefusals() {
	c.refused = &refusals{waiting: make(map[string]map[*refusalWait]struct{})}
	prev := c.nc.ErrorHandler()
	c.nc.SetErrorHandler(func(nc *nats.Conn, sub *nats.Subscription, err error) {
		if errors.Is(err, nats.ErrPermissionViolation) {
			if m := publishRefusedRe.FindStringSubmatch(err.Error()); m != nil {
				c.refused.notify(m[1], err)
			}
		}
		if prev != nil {
			prev(nc, sub, err)
		}
	})
}

func (r *refusals) notify(subj string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for w := range r.waiting[subj] {
		w.cancel(fmt.Errorf("%w: %w", ErrPermissionDenied, err))
	}
}

// refusable returns a context that ends with cause ErrPermissionDenied if
// the server refuses a publish on subj before done is called. Callers map
// the error with refusedErr. On a connection the client did not open (no
// refusal routing) it returns ctx unchanged.
func (c *Client) refusable(ctx context.Context, subj string) (context.Context, func()) {
	if c.refused == nil {
		return ctx, func() {}
	}
	ctx, cancel := context.WithCancelCause(ctx)
	w := &refusalWait{cancel: cancel}
	r := c.refused
	r.mu.Lock()
	if r.waiting[subj] == nil {
		r.waiting[subj] = make(map[*refusalWait]struct{})
	}
	r.waiting[subj][w] = struct{}{}
	r.mu.Unlock()
	return ctx, func() {
		r.mu.Lock()
		delete(r.waiting[subj], w)
		if len(r.waiting[subj]) == 0 {
			delete(r.waiting, subj)
		}
		r.mu.Unlock()
		cancel(nil)
	}
}

// refusedErr returns the refusal that ended ctx, if one did, else err.
func refusedErr(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if cause := context.Cause(ctx); errors.Is(cause, ErrPermissionDenied) {
		return cause
	}
	return err
}
