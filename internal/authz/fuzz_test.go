package authz

import (
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/cogos-dev/coord/subjects"
)

// handoffReads are the subjects of a permission set that read, list or
// decide handoffs: everything on the handoff stream except sending.
func handoffReads(p *server.Permissions, ns string) []string {
	send := subjects.HandoffPrefix + "." + subjects.EncodeToken(ns) + ".*.*"
	var out []string
	for _, s := range p.Publish.Allow {
		if s != send && s != "$JS.API.STREAM.INFO."+subjects.HandoffStream &&
			(strings.Contains(s, subjects.HandoffStream) || strings.HasPrefix(s, subjects.HandoffDonePrefix)) {
			out = append(out, s)
		}
	}
	return out
}

// FuzzPermissions checks, for any two agents coord accepts, that every
// generated subject is valid, that their subscriptions (inboxes) cannot
// overlap, and that no subject one of them may use to read, list or
// decide handoffs matches a subject the other may use for that: the server
// keeps their handoffs apart whatever the names.
func FuzzPermissions(f *testing.F) {
	for _, s := range [][3]string{
		{"ns", "alice", "bob"}, {"ns", "*", ">"}, {"ns", "a", "a.b"}, {"n.s", "a=2Eb", "a.b"},
		{"ns", "a_b", "a"}, {"ns", "handoff", "h"}, {"ns", strings.Repeat("x", 128), strings.Repeat("x", 127) + "y"},
	} {
		f.Add(s[0], s[1], s[2])
	}
	f.Fuzz(func(t *testing.T, ns, a, b string) {
		pa, errA := Permissions(ns, a, Options{})
		pb, errB := Permissions(ns, b, Options{})
		if errA != nil || errB != nil || a == b {
			return
		}
		for _, p := range []*server.Permissions{pa, pb} {
			for _, s := range append(append([]string{}, p.Publish.Allow...), p.Subscribe.Allow...) {
				if !server.IsValidSubject(s) {
					t.Fatalf("Permissions(%q, ...) holds invalid subject %q", ns, s)
				}
			}
		}
		if server.SubjectsCollide(pa.Subscribe.Allow[0], pb.Subscribe.Allow[0]) {
			t.Fatalf("inboxes of %q and %q overlap: %v %v", a, b, pa.Subscribe.Allow, pb.Subscribe.Allow)
		}
		for _, sa := range handoffReads(pa, ns) {
			for _, sb := range handoffReads(pb, ns) {
				if server.SubjectsCollide(sa, sb) {
					t.Fatalf("%q's %q and %q's %q overlap", a, sa, b, sb)
				}
			}
		}
	})
}
