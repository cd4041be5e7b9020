package coord

import (
	"fmt"
	"os"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/cogos-dev/coord/subjects"
)

// Defaults.
const (
	// DefaultClaimTTL is the lease of a claim made without WithTTL.
	DefaultClaimTTL = 30 * time.Second
	// MinClaimTTL and MaxClaimTTL bound a claim's lease. The server counts
	// TTLs in whole seconds.
	MinClaimTTL = time.Second
	MaxClaimTTL = 24 * time.Hour
	// DefaultNamespace is used when neither WithNamespace nor COG_NAMESPACE
	// says otherwise.
	DefaultNamespace = "default"
	// DefaultURL is the NATS URL used when none is configured.
	DefaultURL = nats.DefaultURL
)

type options struct {
	url       string
	conn      *nats.Conn
	natsOpts  []nats.Option
	agent     string
	namespace string
	log       zerolog.Logger
	claimTTL  time.Duration
	replicas  int
	storage   jetstream.StorageType
	bcastAge  time.Duration
	handAge   time.Duration
	// successorAfter is when a wait first looks up who queued behind it
	// (see successorAfter); 0 turns the look-up off (tests of the note path).
	successorAfter time.Duration
}

// Option configures a Client. Options validate their arguments: New fails
// with ErrInvalidOption rather than silently keeping a default.
type Option func(*options) error

// WithURL sets the NATS server URL(s), comma-separated. Default: COG_NATS_URL,
// else NATS_URL, else nats://127.0.0.1:4222.
func WithURL(url string) Option {
	return func(o *options) error {
		if url == "" {
			return fmt.Errorf("%w: empty NATS URL", ErrInvalidOption)
		}
		o.url = url
		return nil
	}
}

// WithConn makes the client use an existing connection, which it does not
// close.
func WithConn(nc *nats.Conn) Option {
	return func(o *options) error {
		if nc == nil {
			return fmt.Errorf("%w: nil connection", ErrInvalidOption)
		}
		o.conn = nc
		return nil
	}
}

// WithNATSOptions passes options (credentials, TLS, names) to nats.Connect.
func WithNATSOptions(opts ...nats.Option) Option {
	return func(o *options) error {
		o.natsOpts = append(o.natsOpts, opts...)
		return nil
	}
}

// WithAgent sets the agent ID. Default: AgentID() (COG_AGENT_ID, USER, root).
func WithAgent(id string) Option {
	return func(o *options) error {
		if err := subjects.ValidateAgent(id); err != nil {
			return err
		}
		o.agent = id
		return nil
	}
}

// WithNamespace sets the namespace. Default: COG_NAMESPACE, else "default".
func WithNamespace(ns string) Option {
	return func(o *options) error {
		if err := subjects.ValidateNamespace(ns); err != nil {
			return err
		}
		o.namespace = ns
		return nil
	}
}

// WithLogger sets the logger. Default: discard.
func WithLogger(l zerolog.Logger) Option {
	return func(o *options) error {
		o.log = l
		return nil
	}
}

// WithClaimTTL sets the default lease of claims (whole seconds, 1s to 24h).
func WithClaimTTL(d time.Duration) Option {
	return func(o *options) error {
		if err := checkTTL(d); err != nil {
			return err
		}
		o.claimTTL = d
		return nil
	}
}

// WithReplicas sets the replica count used when the client creates buckets
// and streams (1, 3 or 5; R3 on a three-node cluster).
func WithReplicas(n int) Option {
	return func(o *options) error {
		if n < 1 || n > 5 {
			return fmt.Errorf("%w: replicas %d (want 1 to 5)", ErrInvalidOption, n)
		}
		o.replicas = n
		return nil
	}
}

// WithMemoryStorage makes buckets and streams the client creates keep their
// data in memory (tests, benchmarks). Default: file.
func WithMemoryStorage() Option {
	return func(o *options) error {
		o.storage = jetstream.MemoryStorage
		return nil
	}
}

// WithBroadcastRetention sets how long broadcasts are kept when the client
// creates the broadcast stream (default 7 days).
func WithBroadcastRetention(d time.Duration) Option {
	return func(o *options) error {
		if d < time.Minute {
			return fmt.Errorf("%w: broadcast retention %v (minimum 1m)", ErrInvalidOption, d)
		}
		o.bcastAge = d
		return nil
	}
}

// WithHandoffRetention sets how long handoffs (pending and archived) are
// kept when the client creates the handoff stream (default 30 days).
func WithHandoffRetention(d time.Duration) Option {
	return func(o *options) error {
		if d < time.Minute {
			return fmt.Errorf("%w: handoff retention %v (minimum 1m)", ErrInvalidOption, d)
		}
		o.handAge = d
		return nil
	}
}

func checkTTL(d time.Duration) error {
	if d < MinClaimTTL || d > MaxClaimTTL {
		return fmt.Errorf("%w: TTL %v (want %v to %v)", ErrInvalidOption, d, MinClaimTTL, MaxClaimTTL)
	}
	return nil
}

func defaultOptions() options {
	url := os.Getenv("COG_NATS_URL")
	if url == "" {
		url = os.Getenv("NATS_URL")
	}
	if url == "" {
		url = DefaultURL
	}
	ns := os.Getenv("COG_NAMESPACE")
	if ns == "" {
		ns = DefaultNamespace
	}
	return options{
		url:       url,
		agent:     AgentID(),
		namespace: ns,
		log:       zerolog.Nop(),
		claimTTL:  DefaultClaimTTL,
		replicas:  1,
		storage:   jetstream.FileStorage,
		bcastAge:  7 * 24 * time.Hour,
		handAge:   30 * 24 * time.Hour,

		successorAfter: successorAfter,
	}
}

// AgentID returns the current agent identifier: COG_AGENT_ID, else USER,
// else "root" (the seed's rule).
func AgentID() string {
	if id := os.Getenv("COG_AGENT_ID"); id != "" {
		return id
	}
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	return "root"
}
