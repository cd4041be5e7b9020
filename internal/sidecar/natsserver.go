package sidecar

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/rs/zerolog"

	"github.com/cogos-dev/coord/coord/embedded"
)

// startServer starts the embedded nats-server: from cfg.ConfigFile when
// given, else the default single-node JetStream server on loopback.
func startServer(cfg *Config) (*server.Server, error) {
	var (
		opts *server.Options
		err  error
	)
	if cfg.ConfigFile != "" {
		opts, err = server.ProcessConfigFile(cfg.ConfigFile)
		if err != nil {
			return nil, fmt.Errorf("sidecar: config %s: %w", cfg.ConfigFile, err)
		}
		opts.NoSigs = true
		opts.NoLog = false
		if !opts.JetStream {
			return nil, fmt.Errorf("sidecar: config %s: coord needs JetStream (add a jetstream block)", cfg.ConfigFile)
		}
		if cfg.DataDirSet || opts.StoreDir == "" {
			opts.StoreDir = filepath.Join(cfg.DataDir, "jetstream")
		}
		if cfg.PortSet {
			opts.Port = natsPort(cfg.Port)
		}
		if cfg.SyncAlways {
			opts.SyncAlways = true
		}
	} else {
		opts, err = embedded.Options(embedded.Config{
			StoreDir:   filepath.Join(cfg.DataDir, "jetstream"),
			Host:       cfg.Host,
			Port:       natsPort(cfg.Port),
			SyncAlways: cfg.SyncAlways,
			Logger:     natsLogger{cfg.Log},
			Debug:      cfg.NATSDebug,
		})
		if err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(opts.StoreDir, 0o700); err != nil {
		return nil, fmt.Errorf("sidecar: store dir: %w", err)
	}
	opts.NoLog = false
	s, err := embedded.Start(opts, natsLogger{cfg.Log})
	if err != nil {
		return nil, fmt.Errorf("sidecar: starting nats-server (is port %d in use? try --port): %w", opts.Port, err)
	}
	return s, nil
}

// natsPort maps our "0 = any free port" to the server's RANDOM_PORT (its 0
// means the default port).
func natsPort(p int) int {
	if p == 0 {
		return server.RANDOM_PORT
	}
	return p
}

// natsLogger sends the server's log lines to zerolog. Notices are logged at
// debug level: the server is chatty at start.
type natsLogger struct{ log zerolog.Logger }

func (l natsLogger) Noticef(format string, v ...any) {
	l.log.Debug().Str("src", "nats").Msgf(format, v...)
}
func (l natsLogger) Warnf(format string, v ...any) {
	l.log.Warn().Str("src", "nats").Msgf(format, v...)
}
func (l natsLogger) Fatalf(format string, v ...any) {
	l.log.Error().Str("src", "nats").Msgf(format, v...)
}
func (l natsLogger) Errorf(format string, v ...any) {
	l.log.Error().Str("src", "nats").Msgf(format, v...)
}
func (l natsLogger) Debugf(format string, v ...any) {
	l.log.Debug().Str("src", "nats").Msgf(format, v...)
}
func (l natsLogger) Tracef(format string, v ...any) {
	l.log.Trace().Str("src", "nats").Msgf(format, v...)
}
