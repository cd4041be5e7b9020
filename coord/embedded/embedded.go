// Package embedded builds and starts an in-process nats-server with
// JetStream. The sidecar's default server and the test harness (testenv) are
// both built from Options, so tests run against the server users run.
package embedded

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Config is what varies between an embedded server for a user and one for a test.
type Config struct {
	// StoreDir is where JetStream keeps its files. Required.
	StoreDir string
	// Host and Port are the client listener; Port -1 picks a free port.
	Host string
	Port int
	// DontListen serves only in-process connections (no socket).
	DontListen bool
	// ServerName names the server (required in a cluster).
	ServerName string
	// SyncAlways makes JetStream fsync every write before acknowledging it.
	SyncAlways bool
	// Logger, when set, receives the server's log lines.
	Logger server.Logger
	// Debug and Trace turn on the server's verbose logging (with Logger).
	Debug, Trace bool

	// Users and NKeys turn on authentication: clients must log in as one of
	// them (internal/authz generates coord's per-agent permissions).
	// NoAuthUser logs a client that gives no credentials in as that user.
	Users      []*server.User
	NKeys      []*server.NkeyUser
	NoAuthUser string
	// AuthFile is a nats.conf (or a fragment of one) whose users, nkeys,
	// no_auth_user and client tls block are loaded, added to the above.
	AuthFile string
	// TLS requires TLS on the client listener; TLSVerify also requires a
	// client certificate signed by TLS.ClientCAs.
	TLS       *tls.Config
	TLSVerify bool

	// ClusterName, when set, makes the server a member of a JetStream
	// cluster of that name (ServerName is then required). ClusterHost and
	// ClusterPort are its route listener (host defaults to Host; port -1
	// picks a free one), and Routes the other members' route URLs
	// (nats-route://host:port).
	ClusterName string
	ClusterHost string
	ClusterPort int
	Routes      []string
	// HTTPPort, when non-zero, serves the monitoring endpoints (/varz,
	// /jsz, ...) on Host; -1 picks a free port.
	HTTPPort int
}

// Options returns nats-server options for cfg: JetStream on, file store in
// cfg.StoreDir, no signal handlers (the host process owns them).
func Options(cfg Config) (*server.Options, error) {
	if cfg.StoreDir == "" {
		return nil, errors.New("embedded: StoreDir is required")
	}
	host := cfg.Host
	if host == "" {
		host = "127.0.0.1"
	}
	opts := &server.Options{
		ServerName: cfg.ServerName,
		Host:       host,
		Port:       cfg.Port,
		DontListen: cfg.DontListen,
		JetStream:  true,
		StoreDir:   cfg.StoreDir,
		NoSigs:     true,
		NoLog:      cfg.Logger == nil,
		Debug:      cfg.Debug,
		Trace:      cfg.Trace,
		SyncAlways: cfg.SyncAlways,
		HTTPHost:   host,
		HTTPPort:   cfg.HTTPPort,
		Users:      cfg.Users,
		Nkeys:      cfg.NKeys,
		NoAuthUser: cfg.NoAuthUser,
	}
	// Every client blocked in Acquire (and every KV watch) holds a
	// consumer; the server's default of 1,000 per stream would cap the
	// number of agents waiting at once.
	opts.JetStreamLimits.DefaultMaxConsumers = -1
	if cfg.ClusterName != "" {
		if cfg.ServerName == "" {
			return nil, errors.New("embedded: a cluster member needs a ServerName")
		}
		chost := cfg.ClusterHost
		if chost == "" {
			chost = host
		}
		opts.Cluster.Name = cfg.ClusterName
		opts.Cluster.Host = chost
		opts.Cluster.Port = cfg.ClusterPort
		for _, r := range cfg.Routes {
			u, err := url.Parse(r)
			if err != nil {
				return nil, fmt.Errorf("embedded: route %q: %w", r, err)
			}
			opts.Routes = append(opts.Routes, u)
		}
	}
	if cfg.TLS != nil {
		opts.TLS, opts.TLSConfig, opts.TLSVerify, opts.TLSTimeout = true, cfg.TLS, cfg.TLSVerify, 2
	}
	if cfg.AuthFile != "" {
		f, err := server.ProcessConfigFile(cfg.AuthFile)
		if err != nil {
			return nil, fmt.Errorf("embedded: auth file: %w", err)
		}
		opts.Users = append(opts.Users, f.Users...)
		opts.Nkeys = append(opts.Nkeys, f.Nkeys...)
		if f.NoAuthUser != "" {
			opts.NoAuthUser = f.NoAuthUser
		}
		if f.TLSConfig != nil {
			opts.TLS, opts.TLSConfig, opts.TLSVerify, opts.TLSTimeout = true, f.TLSConfig, f.TLSVerify, f.TLSTimeout
		}
	}
	return opts, nil
}

// Start starts a server from opts and waits until it accepts connections.
func Start(opts *server.Options, logger server.Logger) (*server.Server, error) {
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded: %w", err)
	}
	if logger != nil {
		s.SetLoggerV2(logger, opts.Debug, opts.Trace, false)
	}
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		return nil, errors.New("embedded: server not ready for connections within 10s")
	}
	return s, nil
}
