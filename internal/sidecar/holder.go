package sidecar

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	neturl "net/url"
	"strings"

	"github.com/cogos-dev/coord/coord"
	"github.com/cogos-dev/coord/internal/httpx"
)

// Holder is a coord.ClaimHolder that hands the claims of the seed API
// (coord.CreateClaim, coord.ReleaseClaim) to a running sidecar, so they
// outlive the calling process:
//
//	h, err := sidecar.FindHolder("") // the sidecar of the default data dir
//	if err == nil {
//		coord.SetClaimHolder(h)
//	}
//
// Claims it returns describe the claim; the sidecar, not the caller, keeps
// them alive (their Lost is nil).
type Holder struct {
	base  string
	token string // the API token (ReadToken)
	hc    *http.Client
}

// NewHolder talks to the sidecar at addr (http://host:port or unix:/path),
// sending token (see ReadToken) as "Authorization: Bearer <token>".
func NewHolder(addr, token string) *Holder {
	if sock, ok := strings.CutPrefix(addr, "unix:"); ok {
		tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		}}
		return &Holder{base: "http://unix", token: token, hc: &http.Client{Transport: tr}}
	}
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	return &Holder{base: strings.TrimRight(addr, "/"), token: token, hc: &http.Client{}}
}

// FindHolder returns a Holder for the sidecar recorded in dataDir ("" =
// DefaultDataDir()), once its health check answers.
func FindHolder(ctx context.Context, dataDir string) (*Holder, error) {
	if dataDir == "" {
		dataDir = DefaultDataDir()
	}
	in, err := ReadInfo(dataDir)
	if err != nil {
		return nil, err
	}
	token, err := ReadToken(dataDir)
	if err != nil {
		return nil, err
	}
	h := NewHolder(in.HTTP, token)
	var out map[string]any
	if err := h.do(ctx, http.MethodGet, "/v1/health", coord.ClaimRequest{}, nil, &out); err != nil {
		return nil, fmt.Errorf("sidecar at %s: %w", in.HTTP, err)
	}
	return h, nil
}

// HoldClaim makes the claim in the sidecar, for req's agent and namespace.
func (h *Holder) HoldClaim(ctx context.Context, req coord.ClaimRequest) (*coord.Claim, error) {
	var cl coord.Claim
	body := ClaimRequest{Path: req.Path, Reason: req.Reason, TTL: req.TTL}
	if err := h.do(ctx, http.MethodPost, "/v1/claims", req, body, &cl); err != nil {
		return nil, err
	}
	return &cl, nil
}

// ReleaseClaim releases req's agent's claim on req.Path in the sidecar.
func (h *Holder) ReleaseClaim(ctx context.Context, req coord.ClaimRequest) error {
	var out ReleaseResponse
	return h.do(ctx, http.MethodDelete, "/v1/claims/"+escapePath(req.Path), req, nil, &out)
}

func (h *Holder) do(ctx context.Context, method, path string, who coord.ClaimRequest, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	r, err := http.NewRequestWithContext(ctx, method, h.base+path, rd)
	if err != nil {
		return err
	}
	r.Header.Set("Content-Type", "application/json")
	if h.token != "" {
		r.Header.Set(httpx.TokenHeader, "Bearer "+h.token)
	}
	if who.Agent != "" {
		r.Header.Set(HeaderAgent, who.Agent)
	}
	if who.Namespace != "" {
		r.Header.Set(HeaderNamespace, who.Namespace)
	}
	resp, err := h.hc.Do(r)
	if err != nil {
		return fmt.Errorf("%w: sidecar: %w", coord.ErrUnavailable, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		var eb ErrorBody
		if err := json.NewDecoder(resp.Body).Decode(&eb); err != nil {
			return fmt.Errorf("sidecar answered %s", resp.Status)
		}
		return bodyError(who.Path, eb)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// bodyError turns an error answer back into coord's sentinels.
func bodyError(path string, eb ErrorBody) error {
	switch eb.Code {
	case CodeClaimed:
		return &coord.ClaimedError{Path: path, Owner: eb.Owner}
	case CodeNotOwner:
		return fmt.Errorf("%w: %s", coord.ErrNotOwner, eb.Error)
	case CodeNotClaimed:
		return fmt.Errorf("%w: %s", coord.ErrNotClaimed, eb.Error)
	case CodeTimeout:
		return fmt.Errorf("%w: %s", coord.ErrTimeout, eb.Error)
	case CodeInvalid:
		return fmt.Errorf("%w: %s", coord.ErrInvalidOption, eb.Error)
	case CodeUnavailable:
		return fmt.Errorf("%w: %s", coord.ErrUnavailable, eb.Error)
	}
	return fmt.Errorf("sidecar: %s", eb.Error)
}

// escapePath escapes each segment of a claim path for a URL.
func escapePath(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		segs[i] = neturl.PathEscape(s)
	}
	return strings.Join(segs, "/")
}
