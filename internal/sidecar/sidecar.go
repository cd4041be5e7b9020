package sidecar

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	neturl "net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/cogos-dev/coord/coord"
	"github.com/cogos-dev/coord/internal/httpx"
	"github.com/cogos-dev/coord/subjects"
)

// Sidecar is a running `coord-agent serve`.
type Sidecar struct {
	cfg    Config
	srv    *server.Server // nil when joined to an external server
	nc     *nats.Conn
	agents *agents
	http   *http.Server
	ln     net.Listener
	info   Info
	token  string // the local API's bearer token (TokenFile)

	// base is the context of every HTTP request: cancelled on Shutdown, so
	// that long waits and follow streams end.
	base       context.Context
	cancelBase context.CancelFunc
	served     chan error

	once    sync.Once
	stopErr error
}

// Start starts (or joins) NATS, the agents' clients and the HTTP API, and
// writes sidecar.json. Call Shutdown to stop.
func Start(ctx context.Context, cfg Config) (_ *Sidecar, err error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("sidecar: data dir: %w", err)
	}
	s := &Sidecar{cfg: cfg, served: make(chan error, 1)}
	defer func() {
		if err != nil {
			s.closeNATS()
		}
	}()
	mode, url := "joined", cfg.NATSURL
	natsOpts := []nats.Option{
		nats.Name("coord-agent sidecar"),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				cfg.Log.Warn().Err(err).Msg("disconnected from NATS")
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			cfg.Log.Info().Str("url", nc.ConnectedUrlRedacted()).Msg("reconnected to NATS")
		}),
	}
	// Replies to the sidecar's one connection arrive under its own agent's
	// inbox prefix: a "union" user (coord-agent authz --union NAME) may
	// subscribe there, and the agents it serves share the connection.
	inbox, err := subjects.InboxPrefix(cfg.Namespace, cfg.Agent)
	if err != nil {
		return nil, fmt.Errorf("sidecar: %w", err)
	}
	natsOpts = append(natsOpts, nats.CustomInboxPrefix(inbox))
	if cfg.NATSURL != "" || cfg.ConfigFile != "" {
		credOpts, err := cfg.Credentials.NATSOptions()
		if err != nil {
			return nil, fmt.Errorf("sidecar: credentials: %w", err)
		}
		natsOpts = append(natsOpts, credOpts...)
	}
	if url == "" {
		mode = "embedded"
		if cfg.ConfigFile != "" {
			mode = "config"
		}
		if s.srv, err = startServer(&cfg); err != nil {
			return nil, err
		}
		url = s.srv.ClientURL()
		natsOpts = append(natsOpts, nats.InProcessServer(s.srv))
	}
	if s.nc, err = nats.Connect(url, natsOpts...); err != nil {
		return nil, fmt.Errorf("sidecar: connecting to %s: %w", url, err)
	}
	s.agents = newAgents(s.nc, cfg.ClaimTTL, cfg.Replicas, cfg.Log)
	// Provision the claim buckets now, so a misconfigured server fails at
	// start rather than on the first request. A cluster whose other nodes
	// are still starting has no JetStream yet: retry for a while.
	if err = s.provision(ctx); err != nil {
		return nil, fmt.Errorf("sidecar: %w", err)
	}
	if s.token, err = httpx.NewToken(); err != nil {
		return nil, errors.Join(fmt.Errorf("sidecar: %w", err), s.agents.releaseAll(ctx))
	}
	if err = httpx.WriteTokenFile(TokenFile(cfg.DataDir), s.token); err != nil {
		return nil, errors.Join(fmt.Errorf("sidecar: %w", err), s.agents.releaseAll(ctx))
	}
	if s.ln, err = httpx.Listen(cfg.HTTPAddr); err != nil {
		err = fmt.Errorf("sidecar: HTTP API on %s (is another sidecar running? try --http): %w", cfg.HTTPAddr, err)
		return nil, errors.Join(err, s.agents.releaseAll(ctx))
	}
	s.base, s.cancelBase = context.WithCancel(context.Background())
	a := &api{s: s, log: cfg.Log}
	s.http = &http.Server{
		Handler:           httpx.LimitBody(MaxBody)(httpx.RequireToken(s.token, "/v1/health")(a.routes())),
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return s.base },
	}
	s.info = Info{
		PID:       os.Getpid(),
		HTTP:      httpURL(s.ln),
		NATSURL:   redact(url),
		Mode:      mode,
		DataDir:   cfg.DataDir,
		Agent:     cfg.Agent,
		Namespace: cfg.Namespace,
		StartedAt: time.Now().UTC(),
	}
	if s.srv != nil {
		s.info.StoreDir = s.srv.JetStreamConfig().StoreDir
		if filepath.Base(s.info.StoreDir) == server.JetStreamStoreDir {
			s.info.StoreDir = filepath.Dir(s.info.StoreDir)
		}
		if abs, err := filepath.Abs(s.info.StoreDir); err == nil {
			s.info.StoreDir = abs
		}
	}
	go func() { s.served <- s.http.Serve(s.ln) }()
	if err = writeInfo(s.info); err != nil {
		s.cancelBase()
		return nil, errors.Join(err, s.http.Close(), s.agents.releaseAll(ctx))
	}
	cfg.Log.Info().Str("nats", s.info.NATSURL).Str("http", s.info.HTTP).Str("mode", mode).
		Str("data", cfg.DataDir).Str("agent", cfg.Agent).Str("ns", cfg.Namespace).Msg("coord-agent serving")
	return s, nil
}

// provision creates the sidecar agent's client (and so the claim
// buckets), retrying for up to cfg.StartTimeout while JetStream is not
// ready (a cluster forming).
func (s *Sidecar) provision(ctx context.Context) error {
	deadline := time.Now().Add(s.cfg.StartTimeout)
	for {
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := s.agents.get(actx, s.cfg.Namespace, s.cfg.Agent)
		cancel()
		if err == nil || isPermanent(err) || time.Now().After(deadline) {
			return err
		}
		s.cfg.Log.Warn().Err(err).Msg("JetStream not ready (cluster still forming?); retrying")
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// isPermanent reports errors that waiting will not fix.
func isPermanent(err error) bool {
	return errors.Is(err, coord.ErrInvalidOption) || errors.Is(err, coord.ErrInvalidAgent) ||
		errors.Is(err, coord.ErrInvalidNamespace) || errors.Is(err, nats.ErrAuthorization) ||
		errors.Is(err, nats.ErrPermissionViolation)
}

// Token is the local API's bearer token, also in TokenFile(DataDir).
func (s *Sidecar) Token() string { return s.token }

// Info says where the sidecar listens.
func (s *Sidecar) Info() Info { return s.info }

// Served reports the HTTP server's end (an error
// other than http.ErrServerClosed means it failed).
func (s *Sidecar) Served() <-chan error { return s.served }

// Shutdown stops taking requests, releases every claim the sidecar holds,
// closes the agents' clients and the connection, stops the embedded server
// and removes sidecar.json. It is idempotent.
func (s *Sidecar) Shutdown(ctx context.Context) error {
	s.once.Do(func() {
		var errs []error
		s.cancelBase()
		if err := s.http.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("http: %w", err))
		}
		if err := s.agents.releaseAll(ctx); err != nil {
			errs = append(errs, err)
		}
		if err := removeInfo(s.info); err != nil {
			errs = append(errs, err)
		}
		s.closeNATS()
		s.stopErr = errors.Join(errs...)
	})
	return s.stopErr
}

func (s *Sidecar) closeNATS() {
	if s.nc != nil {
		s.nc.Close()
	}
	if s.srv != nil {
		s.srv.Shutdown()
		s.srv.WaitForShutdown()
	}
}

// httpURL is how clients reach ln: http://host:port or unix:/path.
func httpURL(ln net.Listener) string {
	if ln.Addr().Network() == "unix" {
		return "unix:" + ln.Addr().String()
	}
	return "http://" + ln.Addr().String()
}

// redact hides a password in each of a comma-separated list of URLs.
func redact(urls string) string {
	parts := strings.Split(urls, ",")
	for i, p := range parts {
		if u, err := neturl.Parse(strings.TrimSpace(p)); err == nil {
			parts[i] = u.Redacted()
		}
	}
	return strings.Join(parts, ",")
}
