package sidecar

import (
	"os"
	"path/filepath"
	"strings"

	"github.com/cogos-dev/coord/internal/httpx"
)

// MaxBody bounds every request body of the local API (413 above it).
const MaxBody = 1 << 20

// TokenEnv names the environment variable that gives clients the local
// API's token when they do not share the sidecar's data dir.
const TokenEnv = "COG_SIDECAR_TOKEN"

// TokenFile is where a sidecar with data dir dataDir writes its API token
// (mode 0600, a fresh token at every start).
func TokenFile(dataDir string) string { return filepath.Join(dataDir, "token") }

// ReadToken returns the token a client sends to the local API: $TOKEN_ENV
// (COG_SIDECAR_TOKEN) if set, else the token file in dataDir ("" =
// DefaultDataDir()).
func ReadToken(dataDir string) (string, error) {
	if t := strings.TrimSpace(os.Getenv(TokenEnv)); t != "" {
		return t, nil
	}
	if dataDir == "" {
		dataDir = DefaultDataDir()
	}
	return httpx.ReadTokenFile(TokenFile(dataDir))
}
