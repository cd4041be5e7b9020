package sidecar

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// InfoFile is the name of the file, in the data dir, where a running
// sidecar says where it listens.
const InfoFile = "sidecar.json"

// Info is what a running sidecar writes to <data dir>/sidecar.json and
// returns from GET /v1/status under "sidecar".
type Info struct {
	PID       int       `json:"pid"`
	HTTP      string    `json:"http"`     // http://127.0.0.1:4223
	NATSURL   string    `json:"nats_url"` // nats://127.0.0.1:4222
	Mode      string    `json:"mode"`     // embedded | config | joined
	DataDir   string    `json:"data_dir"`
	StoreDir  string    `json:"store_dir,omitempty"`
	Agent     string    `json:"agent"`
	Namespace string    `json:"namespace"`
	StartedAt time.Time `json:"started_at"`
}

// InfoPath is the sidecar.json of a data dir.
func InfoPath(dataDir string) string { return filepath.Join(dataDir, InfoFile) }

// ReadInfo reads a data dir's sidecar.json. It does not check that the
// sidecar still runs: ask its /v1/health.
func ReadInfo(dataDir string) (Info, error) {
	var in Info
	b, err := os.ReadFile(InfoPath(dataDir))
	if err != nil {
		return in, err
	}
	if err := json.Unmarshal(b, &in); err != nil {
		return in, fmt.Errorf("sidecar: %s: %w", InfoPath(dataDir), err)
	}
	if in.HTTP == "" {
		return in, errors.New("sidecar: " + InfoPath(dataDir) + " names no HTTP address")
	}
	return in, nil
}

// writeInfo writes sidecar.json atomically (temp file + rename), so a
// reader never sees half a file.
func writeInfo(in Info) error {
	b, err := json.MarshalIndent(in, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(in.DataDir, ".sidecar-*.json")
	if err != nil {
		return fmt.Errorf("sidecar: writing %s: %w", InfoFile, err)
	}
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return fmt.Errorf("sidecar: writing %s: %w", InfoFile, err)
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("sidecar: writing %s: %w", InfoFile, err)
	}
	return os.Rename(tmp.Name(), InfoPath(in.DataDir))
}

// removeInfo removes sidecar.json if it is still ours.
func removeInfo(in Info) error {
	cur, err := ReadInfo(in.DataDir)
	if err != nil || cur.PID != in.PID || cur.HTTP != in.HTTP {
		return nil
	}
	if err := os.Remove(InfoPath(in.DataDir)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}
