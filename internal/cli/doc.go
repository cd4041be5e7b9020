// Package cli implements coord-agent's subcommands (everything but serve's
// run loop, which lives in cmd/coord-agent): parsing, talking to the
// sidecar's HTTP API (or to NATS directly when no sidecar runs), human
// tables or JSON on stdout, and exit codes.
//
// Exit codes: 0 success; 1 refused or timed out (claimed by another agent,
// not the owner, wait timeout) or failed (server unreachable), with one line
// on stderr; 2 usage error (unknown subcommand, missing argument, bad
// duration, invalid path), with usage on stderr and nothing written.
package cli
