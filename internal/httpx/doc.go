// Package httpx hardens a local HTTP API such as the sidecar's: strict JSON
// request decoding with a size limit (unknown fields, duplicate keys,
// trailing data and invalid UTF-8 refused), a bearer-token middleware that
// leaves chosen paths (health) open, and listeners that are loopback-only
// or Unix sockets of mode 0600.
package httpx
