package authz

import (
	"errors"
	"fmt"
	"slices"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/cogos-dev/coord/subjects"
)

// Options adjusts one agent's permissions.
type Options struct {
	// Channels are the broadcast channels the agent may publish on; empty
	// means every channel of its namespace. Every agent may read every
	// channel.
	Channels []string
	// ResetCheckpoints lets the agent write every arrival key of its
	// namespace (ResetCheckpoint deletes other agents' arrivals). Without
	// it an agent writes only its own: <ns>.<checkpoint>.<agent>.
	ResetCheckpoints bool
}

// ErrInvalid: a namespace, agent or channel that coord would refuse.
var ErrInvalid = errors.New("authz: invalid input")

// kvReads are the JetStream API subjects that read a KV bucket's stream (or
// a stream every agent may read): its info, message gets, direct gets
// (both forms) and the consumers of watches, which deliver into the
// caller's own inbox.
func streamReads(stream string) []string {
	return []string{
		"$JS.API.STREAM.INFO." + stream,
		"$JS.API.STREAM.MSG.GET." + stream,
		"$JS.API.DIRECT.GET." + stream,
		"$JS.API.DIRECT.GET." + stream + ".>",
		"$JS.API.CONSUMER.CREATE." + stream + ".>",
		"$JS.API.CONSUMER.DELETE." + stream + ".>",
		"$JS.API.CONSUMER.INFO." + stream + ".>",
		"$JS.API.CONSUMER.MSG.NEXT." + stream + ".>",
		"$JS.FC." + stream + ".>",
	}
}

// Permissions returns the permissions of agent in namespace ns:
//
//   - claims and claim waiters: read and write every key (releasing to a
//     waiter writes another agent's claim and waiter keys; fencing tokens
//     bound what a malicious agent can do with that, see docs/security.md);
//   - checkpoints: read all, write only its own arrivals;
//   - broadcasts: read all, publish on opts.Channels (or all) of ns;
//   - handoffs: send to anyone in ns; read, list and decide only its own
//     (coord.handoff.<ns>.<agent>.*, coord.handoff-done.<ns>.<agent>.*),
//     through direct gets and listing consumers whose API subjects name it;
//   - replies: subscribe only under its own inbox prefix
//     (subjects.InboxPrefix), so no one else reads what it receives.
//
// Everything else is denied: creating or changing streams and buckets
// (an administrator provisions them), deleting messages, other agents'
// handoffs, other subjects.
func Permissions(ns, agent string, opts Options) (*server.Permissions, error) {
	if err := subjects.ValidateNamespace(ns); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if err := subjects.ValidateAgent(agent); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	n, a := subjects.EncodeToken(ns), subjects.EncodeToken(agent)
	pub := []string{"$JS.API.INFO"}

	// Claims and waiters.
	pub = append(pub, "$KV."+subjects.ClaimsBucket+"."+n+".>", "$KV."+subjects.WaitersBucket+".>")
	pub = append(pub, streamReads("KV_"+subjects.ClaimsBucket)...)
	pub = append(pub, streamReads("KV_"+subjects.WaitersBucket)...)

	// Checkpoints.
	if opts.ResetCheckpoints {
		pub = append(pub, "$KV."+subjects.CheckpointsBucket+"."+n+".>")
	} else {
		pub = append(pub, "$KV."+subjects.CheckpointsBucket+"."+n+".*."+a)
	}
	pub = append(pub, streamReads("KV_"+subjects.CheckpointsBucket)...)

	// Broadcasts.
	if len(opts.Channels) == 0 {
		pub = append(pub, subjects.BroadcastPrefix+"."+n+".*")
	}
	for _, ch := range opts.Channels {
		s, err := subjects.BroadcastSubject(ns, ch)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
		}
		pub = append(pub, s)
	}
	pub = append(pub, streamReads(subjects.BroadcastStream)...)

	// Handoffs.
	hs, err := handoffSubjects(ns, agent)
	if err != nil {
		return nil, err
	}
	pub = append(pub, hs...)

	inbox, err := subjects.InboxPrefix(ns, agent)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	slices.Sort(pub)
	return &server.Permissions{
		Publish:   &server.SubjectPermission{Allow: slices.Compact(pub)},
		Subscribe: &server.SubjectPermission{Allow: []string{inbox + ".>"}},
	}, nil
}

// handoffSubjects are the handoff rights of one agent: send to anyone, and
// on its own subjects only: decide, read by ID, list.
func handoffSubjects(ns, agent string) ([]string, error) {
	n, a := subjects.EncodeToken(ns), subjects.EncodeToken(agent)
	st := subjects.HandoffStream
	pending := subjects.HandoffPrefix + "." + n + "." + a + ".*"
	done := subjects.HandoffDonePrefix + "." + n + "." + a + ".*"
	out := []string{
		subjects.HandoffPrefix + "." + n + ".*.*", // send to anyone (and tombstone its own decided ones)
		done, // record its decisions
		"$JS.API.STREAM.INFO." + st,
		"$JS.API.DIRECT.GET." + st + "." + pending,
		"$JS.API.DIRECT.GET." + st + "." + done,
	}
	for _, archive := range []bool{false, true} {
		filter := pending
		if archive {
			filter = done
		}
		for slot := range subjects.HandoffListSlots {
			name, err := subjects.HandoffListConsumer(ns, agent, archive, slot)
			if err != nil {
				return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
			}
			out = append(out,
				"$JS.API.CONSUMER.CREATE."+st+"."+name+"."+filter,
				"$JS.API.CONSUMER.DELETE."+st+"."+name)
		}
	}
	return out, nil
}

// Union merges permission sets: a user that acts for several agents (a
// sidecar serving them over one connection) gets what any of them may.
// A nil set (no restrictions) makes the union nil.
func Union(sets ...*server.Permissions) *server.Permissions {
	var pub, sub []string
	for _, p := range sets {
		if p == nil {
			return nil
		}
		if p.Publish != nil {
			pub = append(pub, p.Publish.Allow...)
		}
		if p.Subscribe != nil {
			sub = append(sub, p.Subscribe.Allow...)
		}
	}
	slices.Sort(pub)
	slices.Sort(sub)
	return &server.Permissions{
		Publish:   &server.SubjectPermission{Allow: slices.Compact(pub)},
		Subscribe: &server.SubjectPermission{Allow: slices.Compact(sub)},
	}
}
