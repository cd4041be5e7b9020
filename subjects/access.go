package subjects

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
)

// Names that let a nats-server enforce who may read what (see internal/authz
// and docs/security.md). Each is derived from the namespace and the agent,
// so a permission can name exactly one agent's subjects.

// InboxPrefix is the reply-subject prefix of an agent's connections:
// "_INBOX_.<ns>.<agent>" with encoded tokens. An agent's user may subscribe
// only under it, so no other agent can read the replies it gets (direct
// gets, consumer deliveries, publish acks).
func InboxPrefix(ns, agent string) (string, error) {
	if err := ValidateNamespace(ns); err != nil {
		return "", err
	}
	if err := ValidateAgent(agent); err != nil {
		return "", err
	}
	return "_INBOX_." + EncodeToken(ns) + "." + EncodeToken(agent), nil
}

// HandoffListSlots is how many listings of one agent's handoffs may run at
// once (each needs its own consumer; a listing that finds every slot busy
// waits for one).
const HandoffListSlots = 4

// HandoffListConsumer is the name of the short-lived consumer that lists an
// agent's pending handoffs (archive false) or decided ones (archive true) in
// slot 0 to HandoffListSlots-1. Only that agent's user may create, read and
// delete it. Names too long for the server are replaced by a hash.
func HandoffListConsumer(ns, agent string, archive bool, slot int) (string, error) {
	if slot < 0 || slot >= HandoffListSlots {
		return "", fmt.Errorf("subjects: handoff list slot %d out of range", slot)
	}
	base, err := HandoffConsumer(ns, agent)
	if err != nil {
		return "", err
	}
	kind := "p"
	if archive {
		kind = "d"
	}
	suffix := fmt.Sprintf("==%s%d", kind, slot)
	if len(base)+len(suffix) <= maxConsumerName {
		return base + suffix, nil
	}
	sum := sha256.Sum256([]byte(ns + "\x00" + agent))
	return "handoff=h=" + hex.EncodeToString(sum[:20]) + suffix, nil
}

// HandoffDonePrefix is the subject prefix of decided handoffs:
// HandoffDonePrefix.<ns>.<recipient>.<id>, in HandoffStream beside the
// pending ones (HandoffPrefix.<ns>.<recipient>.<id>).
const HandoffDonePrefix = "coord.handoff-done"
