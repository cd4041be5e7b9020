package sidecar

import (
	"net/http"

	"github.com/cogos-dev/coord/coord"
)

// ClaimRequest is the body of POST /v1/claims.
type ClaimRequest struct {
	Path   string `json:"path"`
	Reason string `json:"reason,omitempty"`
	// TTL is the lease, a Go duration ("30s"); default: serve --ttl.
	TTL string `json:"ttl,omitempty"`
	// Wait blocks while another agent holds the path (first come, first
	// served), until Timeout ("" = until the request is cancelled).
	Wait    bool   `json:"wait,omitempty"`
	Timeout string `json:"timeout,omitempty"`
}

// ReleaseResponse answers DELETE /v1/claims/{path}.
type ReleaseResponse struct {
	Path     string `json:"path"`
	Released bool   `json:"released"`
}

// claim: POST /v1/claims. The claim is held by the sidecar, which renews it
// until it is released or the sidecar stops.
func (a *api) claim(r *http.Request, c *coord.Client, req ClaimRequest) (any, error) {
	ttl, err := parseDuration("ttl", req.TTL)
	if err != nil {
		return nil, err
	}
	timeout, err := parseDuration("timeout", req.Timeout)
	if err != nil {
		return nil, err
	}
	opts := []coord.ClaimOption{coord.WithReason(req.Reason)}
	if ttl > 0 {
		opts = append(opts, coord.WithTTL(ttl))
	}
	var cl *coord.Claim
	if req.Wait {
		ctx, cancel := withTimeout(r.Context(), timeout)
		defer cancel()
		cl, err = c.Acquire(ctx, req.Path, opts...)
	} else {
		cl, err = c.TryAcquire(r.Context(), req.Path, opts...)
	}
	if err != nil {
		return nil, err
	}
	a.log.Info().Str("agent", c.Agent()).Str("path", cl.Path).Uint64("token", cl.Token).Msg("claimed")
	return cl, nil
}

// release: DELETE /v1/claims/{path}. Releasing a free path is not an error.
func (a *api) release(r *http.Request, c *coord.Client, _ noBody) (any, error) {
	p := r.PathValue("path")
	if err := c.ReleasePath(r.Context(), p); err != nil {
		return nil, err
	}
	a.log.Info().Str("agent", c.Agent()).Str("path", p).Msg("released")
	return ReleaseResponse{Path: p, Released: true}, nil
}

// owner: GET /v1/claims/{path}: the claim on path, or 404 not_claimed.
func (a *api) owner(r *http.Request, c *coord.Client, _ noBody) (any, error) {
	return c.Get(r.Context(), r.PathValue("path"))
}

// listClaims: GET /v1/claims[?agent=ID]: every claim of the namespace.
func (a *api) listClaims(r *http.Request, c *coord.Client, _ noBody) (any, error) {
	all, err := c.List(r.Context())
	if err != nil {
		return nil, err
	}
	return filterClaims(all, r.URL.Query().Get("agent")), nil
}

// filterClaims keeps the claims of agent ("" keeps all); never nil, so
// the JSON is [] rather than null.
func filterClaims(all []coord.Claim, agent string) []coord.Claim {
	out := make([]coord.Claim, 0, len(all))
	for _, cl := range all {
		if agent == "" || cl.Agent == agent {
			out = append(out, cl)
		}
	}
	return out
}
