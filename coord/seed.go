package coord

// The seed-compatible API: package-level functions with the names,
// parameters and results of the file-based package coord replaces, so that
// callers switch by changing an import path. See docs/seed-api.md.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"

	"github.com/cogos-dev/coord/subjects"
)

// seedTimeout bounds each package-level call (they take no context).
const seedTimeout = 10 * time.Second

// startHint tells a caller with no server what to do.
const startHint = "start one with `coord-agent serve` (or set COG_NATS_URL)"

// natsURL is the NATS URL the package-level functions use: COG_NATS_URL,
// else NATS_URL, else nats://127.0.0.1:4222.
func natsURL() string {
	if u := os.Getenv("COG_NATS_URL"); u != "" {
		return u
	}
	if u := os.Getenv("NATS_URL"); u != "" {
		return u
	}
	return DefaultURL
}

// defaultKey names one default client: the environment read at each call
// decides which one a call uses.
type defaultKey struct {
	url, namespace, agent string
	ttl                   string // COG_CLAIM_TTL as given
}

func currentKey(ns string) defaultKey {
	return defaultKey{url: natsURL(), namespace: ns, agent: AgentID(), ttl: os.Getenv("COG_CLAIM_TTL")}
}

type defaultEntry struct {
	ready chan struct{} // closed once c or err is set
	c     *Client
	nc    *nats.Conn
	err   error
}

var defaults = struct {
	mu sync.Mutex
	m  map[defaultKey]*defaultEntry
}{m: make(map[defaultKey]*defaultEntry)}

// DefaultClient returns the client the package-level functions use for
// workspaceRoot with the current environment: one per NATS URL, namespace
// (see Namespace), agent (AgentID) and COG_CLAIM_TTL (the lease of its
// claims, a Go duration; default DefaultClaimTTL), created on first use and
// kept until CloseDefaultClients. It is safe for concurrent use; concurrent first
// calls share one connection attempt, and a failed attempt is not cached.
// Do not Close it yourself: CloseDefaultClients does.
func DefaultClient(workspaceRoot string) (*Client, error) {
	ws, err := openWorkspace(workspaceRoot)
	if err != nil {
		return nil, err
	}
	ns, err := ws.namespace()
	if err != nil {
		return nil, err
	}
	return defaultClient(currentKey(ns))
}

func defaultClient(k defaultKey) (*Client, error) {
	defaults.mu.Lock()
	e, ok := defaults.m[k]
	if !ok {
		e = &defaultEntry{ready: make(chan struct{})}
		defaults.m[k] = e
	}
	defaults.mu.Unlock()
	if !ok {
		e.c, e.nc, e.err = dialDefault(k)
		if e.err != nil {
			defaults.mu.Lock()
			if defaults.m[k] == e {
				delete(defaults.m, k) // let the next call try again
			}
			defaults.mu.Unlock()
		}
		close(e.ready)
	}
	<-e.ready // dialDefault is bounded by its own timeouts
	return e.c, e.err
}

// dialDefault connects and builds a default client. The connection is its
// own (not the client's) so that the error for a missing server can say
// what to run, once.
func dialDefault(k defaultKey) (*Client, *nats.Conn, error) {
	if err := subjects.ValidateAgent(k.agent); err != nil {
		return nil, nil, fmt.Errorf("%w (from COG_AGENT_ID, else USER)", err)
	}
	opts := []Option{WithAgent(k.agent), WithNamespace(k.namespace)}
	if k.ttl != "" {
		d, err := time.ParseDuration(k.ttl)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: COG_CLAIM_TTL %q: %v", ErrInvalidOption, k.ttl, err)
		}
		opts = append(opts, WithClaimTTL(d))
	}
	nc, err := nats.Connect(k.url,
		nats.Name("coord "+k.agent),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250*time.Millisecond),
		nats.Timeout(2*time.Second),
	)
	if err != nil {
		return nil, nil, &hintedError{fmt.Errorf("%w: no NATS server at %s: %s: %v", ErrUnavailable, k.url, startHint, err)}
	}
	ctx, cancel := context.WithTimeout(context.Background(), seedTimeout)
	defer cancel()
	c, err := New(ctx, append(opts, WithConn(nc))...)
	if err != nil {
		nc.Close()
		return nil, nil, seedErr(err)
	}
	return c, nc, nil
}

// CloseDefaultClients closes every default client and its connection. Their
// claims are not released: they expire within their TTL (release them first
// for a clean hand-back). Later package-level calls make new clients. Tests
// call it in t.Cleanup; programs may call it on shutdown.
func CloseDefaultClients() error {
	defaults.mu.Lock()
	entries := defaults.m
	defaults.m = make(map[defaultKey]*defaultEntry)
	defaults.mu.Unlock()
	var errs []error
	for _, e := range entries {
		<-e.ready
		if e.c == nil {
			continue
		}
		errs = append(errs, e.c.Close())
		e.nc.Close()
	}
	return errors.Join(errs...)
}

// seedErr adds the start hint to an availability error, once.
func seedErr(err error) error {
	var h *hintedError
	if errors.Is(err, ErrUnavailable) && !errors.As(err, &h) {
		return &hintedError{fmt.Errorf("%w; %s", err, startHint)}
	}
	return err
}

// hintedError is an error that already says how to start a server.
type hintedError struct{ err error }

func (e *hintedError) Error() string { return e.err.Error() }
func (e *hintedError) Unwrap() error { return e.err }

// seedCall resolves a workspace and runs f on its default client with a
// bounded context.
func seedCall[T any](workspaceRoot string, f func(ctx context.Context, c *Client, ws workspace) (T, error)) (T, error) {
	return seedCallTimeout(workspaceRoot, seedTimeout, f)
}

// seedCallTimeout is seedCall with f's context ending after timeout.
func seedCallTimeout[T any](workspaceRoot string, timeout time.Duration, f func(ctx context.Context, c *Client, ws workspace) (T, error)) (T, error) {
	var zero T
	ws, err := openWorkspace(workspaceRoot)
	if err != nil {
		return zero, err
	}
	ns, err := ws.namespace()
	if err != nil {
		return zero, err
	}
	c, err := defaultClient(currentKey(ns))
	if err != nil {
		return zero, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	v, err := f(ctx, c, ws)
	if err != nil {
		return zero, seedErr(err)
	}
	return v, nil
}

// ---- Claims ----

// CreateClaim claims path in the workspace for the current agent (AgentID),
// recording reason; claiming a path this agent already holds renews it (the
// seed's rule). path may be relative to workspaceRoot or absolute inside
// it; both name the same claim. If another agent holds it, the error is a
// *ClaimedError (errors.Is(err, ErrClaimed)) naming the owner.
//
// Unlike the seed's claim files, the claim is a lease: it is kept alive by
// this process (see SetClaimHolder) and disappears within its TTL
// (DefaultClaimTTL) after the process exits without releasing it.
func CreateClaim(workspaceRoot, path, reason string) (*Claim, error) {
	return seedClaim(workspaceRoot, path, func(ctx context.Context, h ClaimHolder, req ClaimRequest) (*Claim, error) {
		req.Reason = reason
		return h.HoldClaim(ctx, req)
	})
}

// ReleaseClaim releases the current agent's claim on path. Releasing a path
// nobody holds is not an error; releasing one held by another agent gives
// ErrNotOwner.
func ReleaseClaim(workspaceRoot, path string) error {
	_, err := seedClaim(workspaceRoot, path, func(ctx context.Context, h ClaimHolder, req ClaimRequest) (struct{}, error) {
		return struct{}{}, h.ReleaseClaim(ctx, req)
	})
	return err
}

// IsClaimed reports whether anyone holds path. As in the seed it returns
// only a bool: an invalid path, or a server that does not answer, reads as
// false. Use ClaimOwner to tell those apart from a free path.
func IsClaimed(workspaceRoot, path string) bool {
	ok, err := seedPath(workspaceRoot, path, func(ctx context.Context, c *Client, rel string) (bool, error) {
		return c.IsClaimed(ctx, rel)
	})
	return err == nil && ok
}

// ClaimOwner returns the agent holding path, or an error wrapping
// ErrNotClaimed if nobody does.
func ClaimOwner(workspaceRoot, path string) (string, error) {
	return seedPath(workspaceRoot, path, func(ctx context.Context, c *Client, rel string) (string, error) {
		return c.Owner(ctx, rel)
	})
}

// ListClaims returns every live claim in the workspace's namespace, sorted
// by path tokens. Values that do not parse are skipped (Client.ListChecked
// reports them).
func ListClaims(workspaceRoot string) ([]*Claim, error) {
	return seedCall(workspaceRoot, func(ctx context.Context, c *Client, _ workspace) ([]*Claim, error) {
		list, err := c.List(ctx)
		if err != nil {
			return nil, err
		}
		return pointers(list), nil
	})
}

// seedPath is seedCall for a call on one normalized path.
func seedPath[T any](workspaceRoot, path string, f func(ctx context.Context, c *Client, rel string) (T, error)) (T, error) {
	return seedCall(workspaceRoot, func(ctx context.Context, c *Client, ws workspace) (T, error) {
		rel, err := ws.relPath(path)
		if err != nil {
			var zero T
			return zero, err
		}
		return f(ctx, c, rel)
	})
}

// seedClaim resolves a claim request and runs f on the current ClaimHolder.
func seedClaim[T any](workspaceRoot, path string, f func(ctx context.Context, h ClaimHolder, req ClaimRequest) (T, error)) (T, error) {
	var zero T
	ws, err := openWorkspace(workspaceRoot)
	if err != nil {
		return zero, err
	}
	ns, err := ws.namespace()
	if err != nil {
		return zero, err
	}
	rel, err := ws.relPath(path)
	if err != nil {
		return zero, err
	}
	k := currentKey(ns)
	req := ClaimRequest{URL: k.url, Namespace: ns, Agent: k.agent, Path: rel, Root: ws.real, TTL: k.ttl}
	ctx, cancel := context.WithTimeout(context.Background(), seedTimeout)
	defer cancel()
	v, err := f(ctx, claimHolder(), req)
	if err != nil {
		return zero, seedErr(err)
	}
	return v, nil
}

// ---- Broadcasts ----

// CreateBroadcast sends message to channel as the current agent and returns
// once JetStream has stored it. The Broadcast carries the stream sequence
// (Seq) beside the seed's fields.
func CreateBroadcast(workspaceRoot, channel, message string) (*Broadcast, error) {
	return seedCall(workspaceRoot, func(ctx context.Context, c *Client, _ workspace) (*Broadcast, error) {
		b, err := c.Publish(ctx, channel, message)
		if err != nil {
			return nil, err
		}
		return &b, nil
	})
}

// ListBroadcasts returns the messages of channel stored in the last since
// (every retained message when since <= 0), oldest first, each once. It is
// not in the seed's index (the seed read the channel's files); this is its
// obvious form.
func ListBroadcasts(workspaceRoot, channel string, since time.Duration) ([]*Broadcast, error) {
	return seedCall(workspaceRoot, func(ctx context.Context, c *Client, _ workspace) ([]*Broadcast, error) {
		list, err := c.Broadcasts(ctx, channel, since)
		if err != nil {
			return nil, err
		}
		return pointers(list), nil
	})
}

// ---- Handoffs ----

// CreateHandoff hands artifact (required) and message to agent to, who need
// not be running. It returns once the handoff is stored; it stays pending
// until to accepts it (AcceptHandoff with its ID).
func CreateHandoff(workspaceRoot, to, artifact, message string) (*Handoff, error) {
	return seedCall(workspaceRoot, func(ctx context.Context, c *Client, _ workspace) (*Handoff, error) {
		h, err := c.Handoff(ctx, to, artifact, message)
		if err != nil {
			return nil, err
		}
		return &h, nil
	})
}

// ListHandoffs returns the pending handoffs for agent, oldest first. If
// agent is empty, it uses the current agent ID.
func ListHandoffs(workspaceRoot, agent string) ([]*Handoff, error) {
	return seedCall(workspaceRoot, func(ctx context.Context, c *Client, _ workspace) ([]*Handoff, error) {
		list, err := c.Handoffs(ctx, agent)
		if err != nil {
			return nil, err
		}
		return pointers(list), nil
	})
}

// AcceptHandoff accepts (archives) a handoff addressed to the current
// agent. It takes the handoff's ID, Handoff.ID as ListHandoffs returns it;
// the seed took the name of the handoff's file. A seed file name is still
// accepted when the file is in <root>/.cog/handoffs and was loaded by
// Import; any other gives ErrHandoffNotFound. Accepting twice is harmless;
// accepting another agent's handoff gives ErrNotRecipient.
func AcceptHandoff(workspaceRoot, handoffID string) error {
	_, err := seedCall(workspaceRoot, func(ctx context.Context, c *Client, ws workspace) (struct{}, error) {
		id := handoffID
		if uuid.Validate(id) != nil {
			var err error
			if id, err = handoffIDFromFile(ws, c.Namespace(), handoffID); err != nil {
				return struct{}{}, err
			}
		}
		_, err := c.Accept(ctx, id)
		return struct{}{}, err
	})
	return err
}

// handoffIDFromFile maps a seed handoff file name to the ID Import gave it.
func handoffIDFromFile(ws workspace, ns, name string) (string, error) {
	if name == "" || name != filepath.Base(name) || name == "." || name == ".." {
		return "", fmt.Errorf("%w: %q is neither a handoff ID nor a seed handoff file name", ErrHandoffNotFound, name)
	}
	file := filepath.Join(ws.real, ".cog", "handoffs", name)
	h, err := readSeedHandoff(file)
	if err != nil {
		return "", fmt.Errorf("%w: %q is not a handoff ID, and not a readable seed handoff file (%v); "+
			"pass the Handoff.ID that ListHandoffs returns", ErrHandoffNotFound, name, err)
	}
	return importedHandoffID(ns, h), nil
}

// ---- Checkpoints ----

// CreateCheckpoint records that the current agent reached checkpoint name
// and returns the agent ID. Arriving again is harmless.
func CreateCheckpoint(workspaceRoot, name string) (agentID string, err error) {
	return seedCall(workspaceRoot, func(ctx context.Context, c *Client, _ workspace) (string, error) {
		if err := c.Arrive(ctx, name); err != nil {
			return "", err
		}
		return c.Agent(), nil
	})
}

// WaitCheckpoint blocks until every agent in agents has reached checkpoint
// name, or timeout passes. It is woken by the arrivals themselves (the seed
// polled every 2 seconds). On timeout the error is a
// *CheckpointTimeoutError (errors.Is(err, ErrTimeout)) naming the agents
// still missing. A timeout <= 0 checks once without waiting.
func WaitCheckpoint(workspaceRoot, name string, agents []string, timeout time.Duration) error {
	if timeout <= 0 {
		_, err := seedCall(workspaceRoot, func(ctx context.Context, c *Client, _ workspace) (struct{}, error) {
			return struct{}{}, checkArrived(ctx, c, name, agents)
		})
		return err
	}
	_, err := seedCallTimeout(workspaceRoot, timeout, func(ctx context.Context, c *Client, _ workspace) (struct{}, error) {
		return struct{}{}, c.WaitCheckpoint(ctx, name, agents)
	})
	return err
}

// checkArrived is a wait with no time to wait.
func checkArrived(ctx context.Context, c *Client, name string, agents []string) error {
	for _, a := range agents {
		if err := subjects.ValidateAgent(a); err != nil {
			return err
		}
	}
	arrived, err := c.Arrivals(ctx, name)
	if err != nil {
		return err
	}
	var missing []string
	for _, a := range agents {
		if !slices.Contains(arrived, a) && !slices.Contains(missing, a) {
			missing = append(missing, a)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	slices.Sort(missing)
	return &CheckpointTimeoutError{Name: name, Missing: missing, Arrived: arrived}
}

func pointers[T any](list []T) []*T {
	out := make([]*T, len(list))
	for i := range list {
		out[i] = &list[i]
	}
	return out
}
