// Package bench measures coord's primitives against the raw JetStream
// operations they are made of, on the same server in the same run.
//
// Run executes a set of scenarios (claims uncontended and contended,
// try-acquire, blocking waiters, checkpoints, broadcasts and fan-out,
// handoffs, keepalive load, listing) and prints one table row per scenario
// and size: p50, p99, ops/s, the floor's ops/s and the ratio to it, and
// PASS/MISS against the targets of issue 7. The command-line front end is
// `coord-agent bench` (wired from Flags and Run); docs/performance.md has
// the numbers and how they were taken.
package bench
