// Package authz generates the NATS permissions of coord agents: what each
// agent's user may publish and subscribe to so that the server, not the
// client library, enforces who may do what (docs/security.md). Permissions
// gives one agent's subject lists; Render writes users with them as a
// nats.conf authorization block, which `coord-agent authz AGENT...` prints
// and which the tests load into their server.
package authz
