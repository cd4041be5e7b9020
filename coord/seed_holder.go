package coord

import (
	"context"
	"sync"
)

// ClaimRequest is one claim or release made through CreateClaim or
// ReleaseClaim, resolved from the workspace and the environment.
type ClaimRequest struct {
	// URL is the NATS URL (COG_NATS_URL, else NATS_URL, else the default).
	URL string
	// Namespace is the workspace's namespace (see Namespace).
	Namespace string
	// Agent is AgentID() at the time of the call.
	Agent string
	// Path is the normalized path, relative to the root.
	Path string
	// Root is the workspace root, absolute, symlinks resolved.
	Root string
	// Reason is the claim's reason (empty for a release).
	Reason string
	// TTL is COG_CLAIM_TTL as given (a Go duration; empty: DefaultClaimTTL).
	TTL string
}

// ClaimHolder makes and releases the claims of CreateClaim and ReleaseClaim,
// and keeps them alive. The default holds them in this process's default
// client (DefaultClient), so they live as long as the process. The local
// sidecar (`coord-agent serve`) is meant to install a holder that hands
// claims to the sidecar, so that they outlive short-lived processes such as
// CLI calls; the other package-level functions do not need one, as they
// hold nothing.
type ClaimHolder interface {
	HoldClaim(ctx context.Context, req ClaimRequest) (*Claim, error)
	ReleaseClaim(ctx context.Context, req ClaimRequest) error
}

var holder struct {
	mu sync.RWMutex
	h  ClaimHolder
}

// SetClaimHolder makes h hold the claims of CreateClaim and ReleaseClaim
// from now on and returns the previous holder; nil restores the default
// (this process's default clients). Claims already held stay with the
// holder that made them.
func SetClaimHolder(h ClaimHolder) (previous ClaimHolder) {
	holder.mu.Lock()
	defer holder.mu.Unlock()
	previous = holder.h
	if previous == nil {
		previous = processHolder{}
	}
	holder.h = h
	return previous
}

func claimHolder() ClaimHolder {
	holder.mu.RLock()
	defer holder.mu.RUnlock()
	if holder.h == nil {
		return processHolder{}
	}
	return holder.h
}

// processHolder holds claims in the default client of (URL, namespace, agent).
type processHolder struct{}

func (processHolder) HoldClaim(ctx context.Context, req ClaimRequest) (*Claim, error) {
	c, err := defaultClient(defaultKey{url: req.URL, namespace: req.Namespace, agent: req.Agent, ttl: req.TTL})
	if err != nil {
		return nil, err
	}
	return c.TryAcquire(ctx, req.Path, WithReason(req.Reason))
}

func (processHolder) ReleaseClaim(ctx context.Context, req ClaimRequest) error {
	c, err := defaultClient(defaultKey{url: req.URL, namespace: req.Namespace, agent: req.Agent, ttl: req.TTL})
	if err != nil {
		return err
	}
	return c.ReleasePath(ctx, req.Path)
}
