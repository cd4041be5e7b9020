package sidecar

import (
	"net/http"

	"github.com/cogos-dev/coord/coord"
)

// HandoffRequest is the body of POST /v1/handoffs.
type HandoffRequest struct {
	To       string `json:"to"`
	Artifact string `json:"artifact"`
	Message  string `json:"message,omitempty"`
	// Claims are paths the sender holds whose claims go with the handoff.
	Claims []string `json:"claims,omitempty"`
}

// RejectRequest is the body of POST /v1/handoffs/{id}/reject.
type RejectRequest struct {
	Reason string `json:"reason,omitempty"`
}

// handoff: POST /v1/handoffs: stored before the answer; pending until the
// recipient accepts it.
func (a *api) handoff(r *http.Request, c *coord.Client, req HandoffRequest) (any, error) {
	var opts []coord.HandoffOption
	if len(req.Claims) > 0 {
		opts = append(opts, coord.WithClaims(req.Claims...))
	}
	h, err := c.Handoff(r.Context(), req.To, req.Artifact, req.Message, opts...)
	if err != nil {
		return nil, err
	}
	a.log.Info().Str("from", h.From).Str("to", h.To).Str("id", h.ID).Msg("handoff")
	return h, nil
}

// handoffs: GET /v1/handoffs[?agent=ID]: ID's pending handoffs (default:
// the requesting agent), oldest first.
func (a *api) handoffs(r *http.Request, c *coord.Client, _ noBody) (any, error) {
	list, err := c.Handoffs(r.Context(), r.URL.Query().Get("agent"))
	if err != nil {
		return nil, err
	}
	if list == nil {
		list = []coord.Handoff{}
	}
	return list, nil
}

// accept: POST /v1/handoffs/{id}/accept. Claims the handoff carries are
// then held (and kept alive) by the sidecar for the accepting agent.
func (a *api) accept(r *http.Request, c *coord.Client, _ noBody) (any, error) {
	h, err := c.Accept(r.Context(), r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	a.log.Info().Str("agent", c.Agent()).Str("id", h.ID).Strs("claims", h.Claims).Msg("handoff accepted")
	return h, nil
}

// reject: POST /v1/handoffs/{id}/reject.
func (a *api) reject(r *http.Request, c *coord.Client, req RejectRequest) (any, error) {
	return c.Reject(r.Context(), r.PathValue("id"), req.Reason)
}
