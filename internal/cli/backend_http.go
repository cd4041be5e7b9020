package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/cogos-dev/coord/coord"
	"github.com/cogos-dev/coord/internal/httpx"
	"github.com/cogos-dev/coord/internal/sidecar"
)

// httpBackend goes through a sidecar's local API: claims it makes are
// held, and kept alive, by the sidecar.
type httpBackend struct {
	base      string // URL prefix of requests
	shown     string // the address as the user knows it
	agent, ns string
	token     string // the API token, sent as Authorization: Bearer
	hc        *http.Client
}

// newHTTPBackend talks to a sidecar at addr: host:port, http://host:port,
// or unix:/path/to/socket, sending token (sidecar.ReadToken).
func newHTTPBackend(addr, agent, ns, token string) *httpBackend {
	if sock, ok := strings.CutPrefix(addr, "unix:"); ok {
		tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		}}
		return &httpBackend{base: "http://unix", shown: addr, agent: agent, ns: ns, token: token, hc: &http.Client{Transport: tr}}
	}
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	base := strings.TrimRight(addr, "/")
	return &httpBackend{base: base, shown: base, agent: agent, ns: ns, token: token, hc: &http.Client{}}
}

func (h *httpBackend) viaSidecar() string { return h.shown }

func (h *httpBackend) close() { h.hc.CloseIdleConnections() }

func (h *httpBackend) health(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var out map[string]any
	return h.do(ctx, http.MethodGet, "/v1/health", nil, &out)
}

// request builds a request with the identity headers.
func (h *httpBackend) request(ctx context.Context, method, path string, body any) (*http.Request, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, h.base+path, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if h.token != "" {
		req.Header.Set(httpx.TokenHeader, "Bearer "+h.token)
	}
	if h.agent != "" {
		req.Header.Set(sidecar.HeaderAgent, h.agent)
	}
	if h.ns != "" {
		req.Header.Set(sidecar.HeaderNamespace, h.ns)
	}
	return req, nil
}

// do sends a request and decodes a 2xx JSON answer into out, or returns
// an *apiError.
func (h *httpBackend) do(ctx context.Context, method, path string, body, out any) error {
	req, err := h.request(ctx, method, path, body)
	if err != nil {
		return err
	}
	resp, err := h.hc.Do(req)
	if err != nil {
		return fmt.Errorf("sidecar %s: %w", h.shown, err)
	}
	defer resp.Body.Close()
	return decodeResponse(resp, out)
}

func decodeResponse(resp *http.Response, out any) error {
	if resp.StatusCode/100 != 2 {
		ae := &apiError{status: resp.StatusCode}
		if err := json.NewDecoder(resp.Body).Decode(&ae.body); err != nil {
			ae.body.Error = fmt.Sprintf("sidecar answered %s", resp.Status)
		}
		return ae
	}
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("sidecar: reading answer: %w", err)
	}
	return nil
}

// pathEscape escapes each segment of a claim path for /v1/claims/{path...}.
func pathEscape(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
}

func durString(d time.Duration) string {
	if d <= 0 {
		return ""
	}
	return d.String()
}

func (h *httpBackend) claim(ctx context.Context, a claimArgs) (coord.Claim, error) {
	var cl coord.Claim
	err := h.do(ctx, http.MethodPost, "/v1/claims", sidecar.ClaimRequest{
		Path: a.path, Reason: a.reason, TTL: durString(a.ttl), Wait: a.wait, Timeout: durString(a.timeout),
	}, &cl)
	return cl, err
}

func (h *httpBackend) release(ctx context.Context, path string) error {
	var out sidecar.ReleaseResponse
	return h.do(ctx, http.MethodDelete, "/v1/claims/"+pathEscape(path), nil, &out)
}

func (h *httpBackend) owner(ctx context.Context, path string) (coord.Claim, error) {
	var cl coord.Claim
	err := h.do(ctx, http.MethodGet, "/v1/claims/"+pathEscape(path), nil, &cl)
	return cl, err
}

func (h *httpBackend) claims(ctx context.Context) ([]coord.Claim, error) {
	var out []coord.Claim
	err := h.do(ctx, http.MethodGet, "/v1/claims", nil, &out)
	return out, err
}

func (h *httpBackend) status(ctx context.Context) (*sidecar.Status, error) {
	var st sidecar.Status
	err := h.do(ctx, http.MethodGet, "/v1/status", nil, &st)
	return &st, err
}
