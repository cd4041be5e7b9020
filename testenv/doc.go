// Package testenv runs real nats-servers with JetStream for tests: a single
// embedded node (Start), restarts with the same store, and (cluster.go) an
// N-node cluster with crash injection. Servers log to t.Log, so only failing
// tests print, and are shut down by t.Cleanup.
//
// Production code never imports testenv; the sidecar builds its server from
// the same coord/embedded options.
package testenv
