package cli

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/cogos-dev/coord/coord"
	"github.com/cogos-dev/coord/internal/sidecar"
)

// claimArgs is a claim request, validated.
type claimArgs struct {
	path, reason string
	ttl, timeout time.Duration
	wait         bool
}

// backend is how a subcommand reaches coord: through a running sidecar's
// HTTP API, or directly with a coord.Client of its own.
type backend interface {
	// viaSidecar is the sidecar's address, "" for a direct backend.
	viaSidecar() string
	claim(ctx context.Context, a claimArgs) (coord.Claim, error)
	release(ctx context.Context, path string) error
	owner(ctx context.Context, path string) (coord.Claim, error)
	claims(ctx context.Context) ([]coord.Claim, error)
	status(ctx context.Context) (*sidecar.Status, error)
	primitives
	close()
}

// open picks the backend: the sidecar named by --sidecar / $COG_SIDECAR
// (which must answer), else the one recorded in the data dir if it answers
// its health check, else a direct connection to NATS.
func (e *env) open(ctx context.Context) (backend, error) {
	if e.g.sidecar != "" {
		token, err := sidecar.ReadToken(e.dataDir())
		if err != nil {
			return nil, fmt.Errorf("sidecar at %s: API token (set $%s or --data): %w", e.g.sidecar, sidecar.TokenEnv, err)
		}
		b := newHTTPBackend(e.g.sidecar, e.agentHeader(), e.nsHeader(), token)
		if err := b.health(ctx); err != nil {
			return nil, fmt.Errorf("sidecar at %s does not answer: %w", e.g.sidecar, err)
		}
		return b, nil
	}
	info, infoErr := sidecar.ReadInfo(e.dataDir())
	if infoErr == nil && e.g.nats == "" {
		if token, err := sidecar.ReadToken(e.dataDir()); err == nil {
			b := newHTTPBackend(info.HTTP, e.agentHeader(), e.nsHeader(), token)
			if err := b.health(ctx); err == nil {
				return b, nil
			}
		}
	}
	return e.openDirect(ctx, info, infoErr)
}

// openDirect connects to NATS with a client of the CLI's own: --nats,
// else $COG_NATS_URL / $NATS_URL, else the sidecar's recorded server,
// else the default URL.
func (e *env) openDirect(ctx context.Context, info sidecar.Info, infoErr error) (*directBackend, error) {
	url := e.g.nats
	if url == "" {
		url = firstEnv("COG_NATS_URL", "NATS_URL")
	}
	if url == "" && infoErr == nil {
		url = info.NATSURL
	}
	opts := []coord.Option{coord.WithAgent(e.agent())}
	if url != "" {
		opts = append(opts, coord.WithURL(url))
	}
	if ns := e.nsHeader(); ns != "" {
		opts = append(opts, coord.WithNamespace(ns))
	}
	creds, err := e.g.creds.Options()
	if err != nil {
		return nil, usagef("credentials: %v", err)
	}
	opts = append(opts, creds...)
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, err := coord.New(ctx, opts...)
	if err != nil {
		return nil, err
	}
	return &directBackend{c: c}, nil
}

func (e *env) dataDir() string {
	if e.g.dataDir != "" {
		return e.g.dataDir
	}
	return sidecar.DefaultDataDir()
}

// agent is this agent's ID: --agent, else coord's rule.
func (e *env) agent() string {
	if e.g.agent != "" {
		return e.g.agent
	}
	return coord.AgentID()
}

// agentHeader is the agent to name to the sidecar: only an explicit one
// (--agent or $COG_AGENT_ID); otherwise the sidecar's own agent.
func (e *env) agentHeader() string { return e.g.agent }

// nsHeader is the namespace to use when explicitly set ("" otherwise).
func (e *env) nsHeader() string { return e.ns }

func firstEnv(names ...string) string {
	for _, n := range names {
		if v := os.Getenv(n); v != "" {
			return v
		}
	}
	return ""
}

// apiError is a non-2xx answer from the sidecar.
type apiError struct {
	status int
	body   sidecar.ErrorBody
}

func (e *apiError) Error() string {
	if e.body.Error != "" {
		return e.body.Error
	}
	return fmt.Sprintf("sidecar answered %d %s", e.status, http.StatusText(e.status))
}

// refused reports whether err is an answer "no" (claimed, not owner,
// timed out, not found): exit 1 rather than a failure to run.
func exitCode(err error) int {
	var ue *usageError
	var ae *apiError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ue):
		return 2
	case errors.As(err, &ae):
		if ae.body.Code == sidecar.CodeInvalid {
			return 2
		}
		return 1
	case isInvalid(err):
		return 2
	}
	return 1
}

func isInvalid(err error) bool {
	for _, s := range []error{coord.ErrInvalidPath, coord.ErrInvalidAgent, coord.ErrInvalidNamespace,
		coord.ErrInvalidChannel, coord.ErrInvalidName, coord.ErrInvalidOption} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

// oneLine flattens an error message onto one line.
func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}
