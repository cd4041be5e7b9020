package coord

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/cogos-dev/coord/kvstore"
	"github.com/cogos-dev/coord/subjects"
)

// Client is an agent's handle on coord. It is safe for concurrent use.
type Client struct {
	opts    options
	nc      *nats.Conn
	ownConn bool
	js      jetstream.JetStream
	id      string // this client instance; names its waiter keys
	log     zerolog.Logger

	claims  *kvstore.Bucket
	waiters *kvstore.Bucket

	// ctx ends when Close is called; every goroutine the client starts
	// watches it and is counted in wg.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	keep  *keeper
	queue *waitQueue

	mu     sync.Mutex
	leases map[string]*lease        // claim key -> lease held by this client
	hints  map[string]uint64        // claim key -> revision of the marker we left
	held   map[string]time.Time     // claim key -> when we saw another agent hold it
	handed map[string]kvstore.Entry // claim key -> as we just handed it to a waiter
	closed bool

	lazy lazyResources

	refused *refusals // nil on a connection given with WithConn
	// shared is the entry of the connection's shared buckets this client
	// uses (WithConn only; see shared.go).
	shared *sharedKey

	// testHookBehind, when set, sees each look-up of who queued behind a
	// wait (tests).
	testHookBehind func(*nextRef)
}

// New connects (or wraps WithConn) and makes sure the claim buckets exist.
func New(ctx context.Context, opts ...Option) (*Client, error) {
	o := defaultOptions()
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	if err := subjects.ValidateAgent(o.agent); err != nil {
		return nil, fmt.Errorf("%w (set COG_AGENT_ID)", err)
	}
	if err := subjects.ValidateNamespace(o.namespace); err != nil {
		return nil, fmt.Errorf("%w (set COG_NAMESPACE)", err)
	}
	c := &Client{
		opts:   o,
		id:     uuid.NewString(),
		log:    o.log.With().Str("agent", o.agent).Str("ns", o.namespace).Logger(),
		leases: make(map[string]*lease),
		hints:  make(map[string]uint64),
	}
	c.nc = o.conn
	if c.nc == nil {
		inbox, err := inboxOption(o.namespace, o.agent)
		if err != nil {
			return nil, err
		}
		log := c.log
		nopts := append([]nats.Option{
			nats.Name("coord " + o.agent),
			nats.MaxReconnects(-1),
			nats.ReconnectWait(250 * time.Millisecond),
			inbox,
			// nats.go prints asynchronous errors to stderr unless told
			// otherwise; library code logs them instead.
			nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
				ev := log.Warn().Err(err)
				if sub != nil {
					ev = ev.Str("subject", sub.Subject)
				}
				ev.Msg("nats asynchronous error")
			}),
		}, o.natsOpts...)
		nc, err := nats.Connect(o.url, nopts...)
		if err != nil {
			return nil, fmt.Errorf("%w: connecting to %s: %w (start a server with `coord-agent serve`, or set COG_NATS_URL)", ErrUnavailable, o.url, err)
		}
		c.nc, c.ownConn = nc, true
		c.watchRefusals()
	}
	js, err := jetstream.New(c.nc)
	if err != nil {
		c.closeConn()
		return nil, err
	}
	c.js = js
	provision := c.provisionClaims
	if !c.ownConn {
		provision = c.provisionShared
	}
	if err := provision(ctx); err != nil {
		err = c.deniedHint(err)
		c.closeConn()
		return nil, err
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.keep = newKeeper(c)
	c.queue = newWaitQueue(c)
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		c.keep.run(c.ctx)
	}()
	return c, nil
}

// Connect is New with WithURL(url).
func Connect(ctx context.Context, url string, opts ...Option) (*Client, error) {
	return New(ctx, append([]Option{WithURL(url)}, opts...)...)
}

func (c *Client) provisionClaims(ctx context.Context) error {
	var err error
	c.claims, err = c.ensureBucket(ctx, kvstore.BucketConfig{
		Name:        subjects.ClaimsBucket,
		Description: "coord claims: <namespace>.<path tokens> -> holder (JSON), per-key TTL",
		MarkerTTL:   time.Minute,
	})
	if err != nil {
		return err
	}
	c.waiters, err = c.ensureBucket(ctx, kvstore.BucketConfig{
		Name:        subjects.WaitersBucket,
		Description: "coord blocked acquires: <client>.<namespace>.<path tokens> -> waiter (JSON)",
		MarkerTTL:   time.Minute,
	})
	return err
}

// ensureBucket creates or opens a bucket with the client's replicas and
// storage; drift in an existing bucket is logged, not fatal.
func (c *Client) ensureBucket(ctx context.Context, cfg kvstore.BucketConfig) (*kvstore.Bucket, error) {
	cfg.Replicas = c.opts.replicas
	cfg.Storage = c.opts.storage
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	b, err := kvstore.EnsureBucket(ctx, c.js, cfg)
	var drift *kvstore.DriftError
	if errors.As(err, &drift) && b != nil {
		c.log.Warn().Err(err).Msg("bucket settings differ from this client's; using the bucket as it is")
		return b, nil
	}
	if err != nil {
		return nil, fmt.Errorf("coord: provisioning: %w", wrapNATS(err))
	}
	return b, nil
}

// Agent is the client's agent ID.
func (c *Client) Agent() string { return c.opts.agent }

// Namespace is the client's namespace.
func (c *Client) Namespace() string { return c.opts.namespace }

// ID is this client instance's unique ID.
func (c *Client) ID() string { return c.id }

// Conn is the client's NATS connection.
func (c *Client) Conn() *nats.Conn { return c.nc }

// JetStream is the client's JetStream context.
func (c *Client) JetStream() jetstream.JetStream { return c.js }

// Close stops keepalives, waits and watches, and closes the connection if
// the client opened it. Claims still held are NOT released: they expire
// within their TTL (call Release first for a clean hand-back; the sidecar
// does on shutdown). Close is idempotent.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	held := make([]*lease, 0, len(c.leases))
	for _, l := range c.leases {
		held = append(held, l)
	}
	c.mu.Unlock()
	c.cancel()
	c.wg.Wait()
	for _, l := range held {
		l.lose(fmt.Errorf("%w: client closed", ErrClaimLost))
	}
	c.queue.stop()
	if c.shared != nil {
		releaseShared(*c.shared)
	}
	c.closeConn()
	return nil
}

func (c *Client) closeConn() {
	if c.ownConn {
		c.nc.Close()
	}
}

// isClosed reports whether Close has been called.
func (c *Client) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// goTracked runs f in a goroutine owned by the client.
func (c *Client) goTracked(f func(ctx context.Context)) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		f(c.ctx)
	}()
	return true
}

// withDefaultTimeout bounds a call whose context has no deadline, the way
// nats.go does.
func withDefaultTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, 5*time.Second)
}

// cleanupContext is a fresh, bounded context for cleanup after the caller's
// context ended (etcd's Lock does the same for its waiter key).
func cleanupContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 5*time.Second)
}
