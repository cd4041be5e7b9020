// Package coord gives the agents of a multi-node cluster four coordination
// primitives on NATS JetStream: claims (lease-based exclusive ownership of a
// resource path, with fencing tokens), broadcasts, handoffs and checkpoints.
//
// A Client owns one NATS connection (or borrows one), an agent identity and a
// namespace. It is safe for concurrent use; Close stops its keepalives and
// goroutines and waits for them.
//
// Claims live in the KV bucket coord-claims under <namespace>.<path tokens>
// (see package subjects). Acquire is a create-only write with a TTL; the KV
// revision of that write is the claim's fencing token. A held claim is renewed
// by the client (revision-checked, with a fresh TTL) until it is released or
// the client stops; a holder that stops loses the claim within its TTL. A
// blocking Acquire queues in coord-claim-waiters and is handed the claim
// directly by the releasing holder, first come first served.
package coord
