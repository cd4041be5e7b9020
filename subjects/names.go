package subjects

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
)

// Buckets and streams, one set per cluster. Every key and subject in them
// carries the namespace as its first namespace-level token.
const (
	// ClaimsBucket holds one key per claimed path: <ns>.<path tokens>.
	ClaimsBucket = "coord-claims"
	// WaitersBucket holds one key per blocked acquire: <client>.<ns>.<path tokens>.
	WaitersBucket = "coord-claim-waiters"
	// CheckpointsBucket holds one key per arrival: <ns>.<checkpoint>.<agent>.
	CheckpointsBucket = "coord-checkpoints"
	// BroadcastStream stores broadcasts on BroadcastPrefix.<ns>.<channel>.
	BroadcastStream = "COORD_BROADCASTS"
	// HandoffStream stores handoffs on HandoffPrefix.<ns>.<recipient>.
	HandoffStream = "COORD_HANDOFFS"
	// EventsStream is reserved for the audit log.
	EventsStream = "COORD_EVENTS"

	BroadcastPrefix = "coord.bcast"
	HandoffPrefix   = "coord.handoff"
)

// PathTokens encodes a cleaned path as dot-joined tokens, one per segment.
func PathTokens(clean string) string {
	if !strings.ContainsAny(clean, "/") {
		return EncodeToken(clean)
	}
	segs := strings.Split(clean, "/")
	for i, s := range segs {
		segs[i] = EncodeToken(s)
	}
	return strings.Join(segs, ".")
}

// ClaimKey validates a namespace and a relative path and returns the path's
// key in ClaimsBucket together with the cleaned path.
func ClaimKey(ns, p string) (key, clean string, err error) {
	if err := ValidateNamespace(ns); err != nil {
		return "", "", err
	}
	clean, err = CleanPath(p)
	if err != nil {
		return "", "", err
	}
	return EncodeToken(ns) + "." + PathTokens(clean), clean, nil
}

// ClaimFilter is the key filter for every claim of a namespace.
func ClaimFilter(ns string) (string, error) {
	if err := ValidateNamespace(ns); err != nil {
		return "", err
	}
	return EncodeToken(ns) + ".>", nil
}

// ParseClaimKey splits a ClaimsBucket key into its namespace and path. It
// rejects any key ClaimKey cannot have produced, so the path it returns is
// clean and each path has exactly one key.
func ParseClaimKey(key string) (ns, p string, err error) {
	toks := strings.Split(key, ".")
	if len(toks) < 2 {
		return "", "", fmt.Errorf("%w: key %q has no path", ErrInvalidPath, key)
	}
	if ns, err = DecodeToken(toks[0]); err != nil {
		return "", "", err
	}
	segs := make([]string, len(toks)-1)
	for i, t := range toks[1:] {
		if t == "" {
			return "", "", fmt.Errorf("%w: key %q has an empty token", ErrInvalidToken, key)
		}
		if segs[i], err = DecodeToken(t); err != nil {
			return "", "", err
		}
	}
	p = strings.Join(segs, "/")
	// Reject keys ClaimKey cannot produce (written by hand, say): an invalid
	// namespace, a path that is not clean, or a segment holding an escaped
	// '/', which would make two keys name one path.
	canon, _, err := ClaimKey(ns, p)
	if err != nil {
		return "", "", err
	}
	if canon != key {
		return "", "", fmt.Errorf("%w: key %q is not canonical (want %q)", ErrInvalidPath, key, canon)
	}
	return ns, p, nil
}

// WaiterKey is the WaitersBucket key of client's wait for the claim key.
// The client ID comes first so that one watch on WaiterClientFilter sees all
// of a client's waits.
func WaiterKey(clientID, claimKey string) string {
	return EncodeToken(clientID) + "." + claimKey
}

// SessionKey is the WaitersBucket key of a client's session: one token, so
// no waiter filter matches it.
func SessionKey(clientID string) string { return EncodeToken(clientID) }

// WaiterFilter matches every waiter of one claim key.
func WaiterFilter(claimKey string) string { return "*." + claimKey }

// WaiterClientFilter matches every wait of one client.
func WaiterClientFilter(clientID string) string { return EncodeToken(clientID) + ".>" }

// CheckpointKey is the CheckpointsBucket key of agent's arrival at checkpoint name.
func CheckpointKey(ns, name, agent string) (string, error) {
	f, err := CheckpointFilter(ns, name)
	if err != nil {
		return "", err
	}
	if err := ValidateAgent(agent); err != nil {
		return "", err
	}
	return f[:len(f)-1] + EncodeToken(agent), nil
}

// CheckpointFilter matches every arrival at one checkpoint.
func CheckpointFilter(ns, name string) (string, error) {
	if err := ValidateNamespace(ns); err != nil {
		return "", err
	}
	if err := ValidateName(name); err != nil {
		return "", err
	}
	return EncodeToken(ns) + "." + EncodeToken(name) + ".*", nil
}

// BroadcastSubject is the subject of one channel.
func BroadcastSubject(ns, channel string) (string, error) {
	if err := ValidateNamespace(ns); err != nil {
		return "", err
	}
	if err := ValidateChannel(channel); err != nil {
		return "", err
	}
	return BroadcastPrefix + "." + EncodeToken(ns) + "." + EncodeToken(channel), nil
}

// HandoffSubject is the subject of one recipient's handoffs.
func HandoffSubject(ns, agent string) (string, error) {
	if err := ValidateNamespace(ns); err != nil {
		return "", err
	}
	if err := ValidateAgent(agent); err != nil {
		return "", err
	}
	return HandoffPrefix + "." + EncodeToken(ns) + "." + EncodeToken(agent), nil
}

// maxConsumerName is the longest consumer name the server accepts.
const maxConsumerName = 255

// HandoffConsumer is the durable consumer name of one recipient. It is
// "handoff==<ns>==<agent>" with encoded tokens ("==" never occurs inside an
// encoded token, so the split is unambiguous), or, when that would be too
// long for the server, "handoff=h=" and a hash of the two.
func HandoffConsumer(ns, agent string) (string, error) {
	if err := ValidateNamespace(ns); err != nil {
		return "", err
	}
	if err := ValidateAgent(agent); err != nil {
		return "", err
	}
	name := "handoff==" + EncodeToken(ns) + "==" + EncodeToken(agent)
	if len(name) <= maxConsumerName {
		return name, nil
	}
	sum := sha256.Sum256([]byte(ns + "\x00" + agent))
	return "handoff=h=" + hex.EncodeToString(sum[:20]), nil
}
