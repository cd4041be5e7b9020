package sidecar

import (
	"fmt"
	"net/http"

	"github.com/cogos-dev/coord/coord"
)

// CheckpointResponse answers arrive, wait and GET on a checkpoint.
type CheckpointResponse struct {
	Name    string   `json:"name"`
	Agent   string   `json:"agent,omitempty"` // who arrived (arrive only)
	Arrived []string `json:"arrived"`
}

// WaitRequest is the body of POST /v1/checkpoints/{name}/wait: either
// Agents (every one of them) or Count (any Count agents).
type WaitRequest struct {
	Agents  []string `json:"agents,omitempty"`
	Count   int      `json:"count,omitempty"`
	Timeout string   `json:"timeout,omitempty"`
}

// arrive: POST /v1/checkpoints/{name}/arrive (idempotent per agent).
func (a *api) arrive(r *http.Request, c *coord.Client, _ noBody) (any, error) {
	name := r.PathValue("name")
	if err := c.Arrive(r.Context(), name); err != nil {
		return nil, err
	}
	arrived, err := c.Arrivals(r.Context(), name)
	if err != nil {
		return nil, err
	}
	return CheckpointResponse{Name: name, Agent: c.Agent(), Arrived: nonNil(arrived)}, nil
}

// arrivals: GET /v1/checkpoints/{name}.
func (a *api) arrivals(r *http.Request, c *coord.Client, _ noBody) (any, error) {
	name := r.PathValue("name")
	arrived, err := c.Arrivals(r.Context(), name)
	if err != nil {
		return nil, err
	}
	return CheckpointResponse{Name: name, Arrived: nonNil(arrived)}, nil
}

// wait: POST /v1/checkpoints/{name}/wait: answers when the agents (or
// count) have arrived, or 408 timeout naming the missing agents.
func (a *api) wait(r *http.Request, c *coord.Client, req WaitRequest) (any, error) {
	timeout, err := parseDuration("timeout", req.Timeout)
	if err != nil {
		return nil, err
	}
	if (len(req.Agents) == 0) == (req.Count <= 0) {
		return nil, fmt.Errorf("%w: give either agents or a positive count", errInvalid)
	}
	ctx, cancel := withTimeout(r.Context(), timeout)
	defer cancel()
	name := r.PathValue("name")
	var arrived []string
	if req.Count > 0 {
		arrived, err = c.WaitCheckpointCount(ctx, name, req.Count)
	} else if err = c.WaitCheckpoint(ctx, name, req.Agents); err == nil {
		arrived, err = c.Arrivals(r.Context(), name)
	}
	if err != nil {
		return nil, err
	}
	return CheckpointResponse{Name: name, Arrived: nonNil(arrived)}, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
