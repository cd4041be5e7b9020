package cli

import "github.com/cogos-dev/coord/internal/sidecar"

// primitives are the backend calls for broadcasts, handoffs, checkpoints
// and import.
type primitives interface{}

func addPrimitiveCommands(m map[string]subcommand) {}

func (e *env) addPendingHandoffs(b backend, st *sidecar.Status) error { return nil }

func printStatusHandoffs(e *env, st *sidecar.Status) {}
