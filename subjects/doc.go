// Package subjects is coord's naming scheme: the names of its buckets and
// streams, the subjects and keys it writes, and the validation and reversible
// encoding of namespaces, resource paths, agent IDs, channel and checkpoint
// names into NATS tokens.
//
// It is pure: it imports nothing from NATS, so every rule here can be read and
// tested on its own.
//
// Encoding: a name becomes one token in which every byte outside
// [A-Za-z0-9_-] is written as =XX (two upper-case hex digits). The result is
// never empty and never contains '*', '>', '.', whitespace or any byte NATS
// rejects in a subject, key or consumer name, and DecodeToken reverses it. A
// resource path keeps its hierarchy: each segment is one token, joined by '.',
// so "src/main.go" is stored under "src.main=2Ego" and wildcards such as
// "<ns>.src.>" select a directory.
package subjects
