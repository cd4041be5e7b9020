// Package sidecar is `coord-agent serve`: it starts (or joins) a NATS
// server with JetStream, keeps agents' claims alive with one coord.Client
// per agent, and serves a local HTTP+JSON API on loopback so agents written
// in any language can claim, broadcast, hand off and wait on checkpoints.
//
// On a clean shutdown it releases every claim it holds. A sidecar killed
// without a chance to clean up (SIGKILL) stops renewing, so its claims
// expire within their TTL.
//
// It writes where it listens to <data dir>/sidecar.json (see Info), which
// the CLI reads to find it.
package sidecar
