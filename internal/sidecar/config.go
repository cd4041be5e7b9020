package sidecar

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/rs/zerolog"

	"github.com/cogos-dev/coord/coord"
)

// Defaults for serve.
const (
	// DefaultPort is the embedded server's client port (the NATS default).
	DefaultPort = 4222
	// DefaultHTTP is the local API's listen address.
	DefaultHTTP = "127.0.0.1:4223"
)

// Config says how to run a sidecar. Zero values take the defaults.
type Config struct {
	// DataDir holds the embedded server's JetStream store (DataDir/jetstream)
	// and sidecar.json. Default: DefaultDataDir().
	DataDir string
	// NATSURL joins an existing server or cluster instead of starting one.
	NATSURL string
	// ConfigFile starts an embedded server from a nats-server configuration
	// file. DataDir, when set explicitly (DataDirSet), overrides its
	// store_dir; PortSet overrides its port.
	ConfigFile string
	DataDirSet bool
	// Host and Port are the embedded server's client listener (loopback,
	// DefaultPort). Port 0 picks a free port; PortSet says it was given.
	Host    string
	Port    int
	PortSet bool
	// SyncAlways makes the embedded server fsync every write before it
	// acknowledges it (see docs/operations.md, "Durability").
	SyncAlways bool
	// HTTPAddr is where the local API listens. Default: DefaultHTTP; port 0
	// picks a free port.
	HTTPAddr string
	// Agent and Namespace are used for requests that do not name them.
	Agent     string
	Namespace string
	// ClaimTTL is the lease of claims made without a TTL.
	ClaimTTL time.Duration
	// Replicas is the replica count of buckets and streams the sidecar
	// creates (3 on a three-node cluster). Default 1.
	Replicas int
	// StartTimeout bounds how long Start waits for JetStream to become
	// usable (a cluster forming). Default 1 minute.
	StartTimeout time.Duration
	// Log receives the sidecar's (and the embedded server's) log lines.
	Log zerolog.Logger
	// Credentials log the sidecar in to a server it joins (NATSURL); the
	// embedded server needs none.
	Credentials coord.Credentials
	// NATSDebug turns on the embedded server's debug log.
	NATSDebug bool
}

// DefaultDataDir is $COG_DATA_DIR, else $XDG_DATA_HOME/coord, else
// ~/.local/share/coord.
func DefaultDataDir() string {
	if d := os.Getenv("COG_DATA_DIR"); d != "" {
		return d
	}
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "coord")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".local", "share", "coord")
	}
	return filepath.Join(os.TempDir(), "coord")
}

func (c *Config) setDefaults() error {
	if c.DataDir == "" {
		c.DataDir = DefaultDataDir()
	}
	abs, err := filepath.Abs(c.DataDir)
	if err != nil {
		return fmt.Errorf("sidecar: data dir: %w", err)
	}
	c.DataDir = abs
	if c.Host == "" {
		c.Host = "127.0.0.1"
	}
	if !c.PortSet && c.Port == 0 {
		c.Port = DefaultPort
	}
	if c.HTTPAddr == "" {
		c.HTTPAddr = DefaultHTTP
	}
	if c.Agent == "" {
		c.Agent = coord.AgentID()
	}
	if c.Namespace == "" {
		c.Namespace = os.Getenv("COG_NAMESPACE")
	}
	if c.Namespace == "" {
		c.Namespace = coord.DefaultNamespace
	}
	if c.ClaimTTL == 0 {
		c.ClaimTTL = coord.DefaultClaimTTL
	}
	if c.StartTimeout == 0 {
		c.StartTimeout = time.Minute
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	if c.NATSURL != "" && c.ConfigFile != "" {
		return fmt.Errorf("sidecar: give --nats or --config, not both")
	}
	return nil
}
