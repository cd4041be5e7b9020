package sidecar

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/rs/zerolog"

	"github.com/cogos-dev/coord/coord"
	"github.com/cogos-dev/coord/internal/httpx"
	"github.com/cogos-dev/coord/subjects"
)

// Request headers that say who is asking. Without them the sidecar's own
// agent and namespace (serve --agent, --workspace / COG_NAMESPACE) are used.
const (
	HeaderAgent     = "X-Coord-Agent"
	HeaderNamespace = "X-Coord-Namespace"
)

// Error codes in ErrorBody.Code; the CLI maps them to exit codes.
const (
	CodeInvalid      = "invalid"       // 400: bad path, name, duration or body
	CodeNotOwner     = "not_owner"     // 403: release of a claim held by another agent
	CodeNotRecipient = "not_recipient" // 403: accepting another agent's handoff
	CodeNotClaimed   = "not_claimed"   // 404: owner of a free path
	CodeNotFound     = "not_found"     // 404: no such handoff
	CodeTimeout      = "timeout"       // 408: a wait ran out of time
	CodeClaimed      = "claimed"       // 409: the path is held by another agent
	CodeUnavailable  = "unavailable"   // 503: NATS unreachable, or shutting down
	CodeInternal     = "internal"      // 500: anything else
)

// ErrorBody is the JSON of every non-2xx answer.
type ErrorBody struct {
	Error string `json:"error"`
	Code  string `json:"code"`
	// Owner is the current holder, for claimed and not_owner.
	Owner string `json:"owner,omitempty"`
	// Missing and Arrived are set when a checkpoint wait timed out.
	Missing []string `json:"missing,omitempty"`
	Arrived []string `json:"arrived,omitempty"`
}

// api is the local HTTP API.
type api struct {
	s   *Sidecar
	log zerolog.Logger
}

func (a *api) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/health", a.health)
	mux.HandleFunc("GET /v1/status", handle(a, a.status))
	mux.HandleFunc("POST /v1/claims", handle(a, a.claim))
	mux.HandleFunc("GET /v1/claims", handle(a, a.listClaims))
	mux.HandleFunc("GET /v1/claims/{path...}", handle(a, a.owner))
	mux.HandleFunc("DELETE /v1/claims/{path...}", handle(a, a.release))
	a.extraRoutes(mux)
	return a.logRequests(mux)
}

// client returns the coord.Client of the agent the request speaks for.
func (a *api) client(r *http.Request) (*coord.Client, error) {
	agent := r.Header.Get(HeaderAgent)
	if agent == "" {
		agent = a.s.cfg.Agent
	}
	ns := r.Header.Get(HeaderNamespace)
	if ns == "" {
		ns = a.s.cfg.Namespace
	}
	if err := subjects.ValidateAgent(agent); err != nil {
		return nil, err
	}
	if err := subjects.ValidateNamespace(ns); err != nil {
		return nil, err
	}
	return a.s.agents.get(r.Context(), ns, agent)
}

func (a *api) health(w http.ResponseWriter, r *http.Request) {
	if !a.s.nc.IsConnected() {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "disconnected", "nats": a.s.nc.Status().String()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "ok", "agent": a.s.cfg.Agent, "namespace": a.s.cfg.Namespace})
}

func (a *api) status(r *http.Request, c *coord.Client, _ noBody) (any, error) {
	st, err := CollectStatus(r.Context(), c)
	if err != nil {
		return nil, err
	}
	info := a.s.Info()
	st.Sidecar = &info
	st.Held = a.s.agents.held()
	return st, nil
}

// decode reads a JSON body into v strictly (httpx.Decode: no unknown
// field, no key twice, nothing after the value, at most MaxBody bytes); an
// empty body (Content-Length 0) leaves v as is, so optional bodies stay
// optional.
func decode(r *http.Request, v any) error {
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return nil
	}
	if err := httpx.Decode(r.Body, MaxBody, v); err != nil {
		if errors.Is(err, httpx.ErrBodyTooLarge) {
			return fmt.Errorf("%w: body: %w", errInvalid, err)
		}
		return fmt.Errorf("%w: body: %v", errInvalid, err)
	}
	return nil
}

// errInvalid marks bad request input found by the API itself.
var errInvalid = errors.New("sidecar: invalid request")

// parseDuration parses an optional Go duration ("30s", "2m").
func parseDuration(what, s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%w: %s %q is not a duration like 30s or 2m", errInvalid, what, s)
	}
	return d, nil
}

// withTimeout bounds ctx by d when d > 0.
func withTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if d > 0 {
		return context.WithTimeout(ctx, d)
	}
	return context.WithCancel(ctx)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v) // the client went away: nothing to do
}

// fail answers with the status and code err maps to.
func (a *api) fail(w http.ResponseWriter, r *http.Request, err error) {
	code, body := errorBody(err)
	if code >= 500 {
		a.log.Warn().Err(err).Str("method", r.Method).Str("url", r.URL.Path).Msg("request failed")
	}
	writeJSON(w, code, body)
}

func errorBody(err error) (int, ErrorBody) {
	b := ErrorBody{Error: err.Error()}
	var claimed *coord.ClaimedError
	switch {
	case errors.As(err, &claimed):
		b.Code, b.Owner = CodeClaimed, claimed.Owner
		return http.StatusConflict, b
	case errors.Is(err, coord.ErrNotOwner):
		b.Code = CodeNotOwner
		return http.StatusForbidden, b
	case errors.Is(err, coord.ErrNotClaimed):
		b.Code = CodeNotClaimed
		return http.StatusNotFound, b
	case errors.Is(err, coord.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		b.Code = CodeTimeout
		timeoutDetails(err, &b)
		return http.StatusRequestTimeout, b
	case errors.Is(err, httpx.ErrBodyTooLarge):
		b.Code = CodeInvalid
		return http.StatusRequestEntityTooLarge, b
	case errors.Is(err, errInvalid),
		errors.Is(err, coord.ErrInvalidPath), errors.Is(err, coord.ErrInvalidAgent),
		errors.Is(err, coord.ErrInvalidNamespace), errors.Is(err, coord.ErrInvalidChannel),
		errors.Is(err, coord.ErrInvalidName), errors.Is(err, coord.ErrInvalidOption):
		b.Code = CodeInvalid
		return http.StatusBadRequest, b
	case errors.Is(err, coord.ErrUnavailable), errors.Is(err, errShuttingDown), errors.Is(err, coord.ErrClosed):
		b.Code = CodeUnavailable
		return http.StatusServiceUnavailable, b
	}
	if code, ok := primitiveError(err, &b); ok {
		return code, b
	}
	b.Code = CodeInternal
	return http.StatusInternalServerError, b
}

// statusRecorder remembers the status code for the request log.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.code = code
	s.ResponseWriter.WriteHeader(code)
}

// Flush lets streaming handlers flush through the recorder.
func (s *statusRecorder) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (a *api) logRequests(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
		h.ServeHTTP(rec, r)
		a.log.Debug().Str("method", r.Method).Str("url", r.URL.RequestURI()).
			Str("agent", r.Header.Get(HeaderAgent)).Int("code", rec.code).
			Dur("took", time.Since(start)).Msg("http")
	})
}
