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
func (a *api) handoff(w http.ResponseWriter, r *http.Request) {
	var req HandoffRequest
	if err := decode(r, &req); err != nil {
		a.fail(w, r, err)
		return
	}
	c, err := a.client(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	var opts []coord.HandoffOption
	if len(req.Claims) > 0 {
		opts = append(opts, coord.WithClaims(req.Claims...))
	}
	h, err := c.Handoff(r.Context(), req.To, req.Artifact, req.Message, opts...)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.log.Info().Str("from", h.From).Str("to", h.To).Str("id", h.ID).Msg("handoff")
	writeJSON(w, http.StatusOK, h)
}

// handoffs: GET /v1/handoffs[?agent=ID]: ID's pending handoffs (default:
// the requesting agent), oldest first.
func (a *api) handoffs(w http.ResponseWriter, r *http.Request) {
	c, err := a.client(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	list, err := c.Handoffs(r.Context(), r.URL.Query().Get("agent"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if list == nil {
		list = []coord.Handoff{}
	}
	writeJSON(w, http.StatusOK, list)
}

// accept: POST /v1/handoffs/{id}/accept. Claims the handoff carries are
// then held (and kept alive) by the sidecar for the accepting agent.
func (a *api) accept(w http.ResponseWriter, r *http.Request) {
	c, err := a.client(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	h, err := c.Accept(r.Context(), r.PathValue("id"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.log.Info().Str("agent", c.Agent()).Str("id", h.ID).Strs("claims", h.Claims).Msg("handoff accepted")
	writeJSON(w, http.StatusOK, h)
}

// reject: POST /v1/handoffs/{id}/reject.
func (a *api) reject(w http.ResponseWriter, r *http.Request) {
	var req RejectRequest
	if err := decode(r, &req); err != nil {
		a.fail(w, r, err)
		return
	}
	c, err := a.client(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	h, err := c.Reject(r.Context(), r.PathValue("id"), req.Reason)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, h)
}
