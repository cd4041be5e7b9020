package coord

import (
	"errors"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/cogos-dev/coord/subjects"
)

// FuzzDecodeHandoff feeds stored values and subjects (anyone with the nats
// CLI can write junk there) to the handoff decoder: it must not panic,
// must fail with ErrBadValue, and a value it accepts must sit on exactly
// the subject its recipient, ID and status call for.
func FuzzDecodeHandoff(f *testing.F) {
	id := "3f0c2a5e-1b7d-4c1e-9a1f-2d3c4b5a6e7f"
	good := `{"id":"` + id + `","from":"alice","to":"bob","artifact":"x","message":"","timestamp":"2026-11-27T06:50:00Z","status":"pending"}`
	f.Add("coord.handoff.test.bob."+id, []byte(good))
	f.Add("coord.handoff-done.test.bob."+id, []byte(strings.Replace(good, "pending", "accepted", 1)))
	f.Add("coord.handoff.test.*."+id, []byte(good))
	f.Add("coord.handoff.te=ZZst.bob."+id, []byte(good))
	f.Add("coord.handoff.test.bob."+id, []byte(`{"id":"`+id+`","from":"a","to":"bob","artifact":"x","claims":["a"],"status":"pending"}`))
	f.Add("coord.handoff.test.bob."+id, []byte(`{"id":1}`))
	f.Add("coord.handoff.test.bob."+id, []byte("\xff\x00"))
	f.Fuzz(func(t *testing.T, subj string, data []byte) {
		rec, err := decodeHandoff(subj, data)
		if err != nil {
			if !errors.Is(err, ErrBadValue) {
				t.Fatalf("decodeHandoff(%q): error %v does not wrap ErrBadValue", subj, err)
			}
			return
		}
		if len(rec.Leases) != len(rec.Claims) || rec.ID == "" || rec.From == "" || rec.Artifact == "" {
			t.Fatalf("decodeHandoff(%q) accepted an incomplete record %+v", subj, rec)
		}
		toks := strings.Split(subj, ".")
		ns, err := subjects.DecodeToken(toks[2])
		if err != nil {
			t.Fatalf("decodeHandoff(%q) accepted an undecodable namespace", subj)
		}
		pending, err := subjects.HandoffSubject(ns, rec.To)
		if err != nil {
			t.Fatalf("decodeHandoff(%q) accepted recipient %q: %v", subj, rec.To, err)
		}
		want := pending + "." + rec.ID
		if rec.Status != HandoffPending {
			want = subjects.HandoffDonePrefix + strings.TrimPrefix(pending, subjects.HandoffPrefix) + "." + rec.ID
		}
		if subj != want {
			t.Fatalf("decodeHandoff accepted %+v on %q, want it on %q", rec.Handoff, subj, want)
		}
	})
}

// FuzzCheckID checks that a handoff ID becomes a subject token only if it
// is a canonical UUID: one literal token, no wildcard, no dot.
func FuzzCheckID(f *testing.F) {
	for _, s := range []string{"3f0c2a5e-1b7d-4c1e-9a1f-2d3c4b5a6e7f", "3F0C2A5E-1B7D-4C1E-9A1F-2D3C4B5A6E7F",
		"{3f0c2a5e-1b7d-4c1e-9a1f-2d3c4b5a6e7f}", "urn:uuid:3f0c2a5e-1b7d-4c1e-9a1f-2d3c4b5a6e7f", "*", ">", "a.b", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		if err := checkID(id); err != nil {
			if !errors.Is(err, ErrHandoffNotFound) {
				t.Fatalf("checkID(%q): %v does not wrap ErrHandoffNotFound", id, err)
			}
			return
		}
		if len(id) != 36 || strings.ToLower(id) != id || !server.IsValidLiteralSubject("coord.handoff.ns.agent."+id) {
			t.Fatalf("checkID accepted %q", id)
		}
	})
}

// FuzzPendingFromReply checks the parser of consumer reply subjects: it
// never panics, and what it accepts is a $JS.ACK subject whose pending
// token it read.
func FuzzPendingFromReply(f *testing.F) {
	for _, s := range []string{"$JS.ACK.S.C.1.2.3.4.5", "$JS.ACK.dom.hash.S.C.1.2.3.4.5.rand", "$JS.ACK.S.C.1.2.3.4.-1", "", "$JS.ACK", "x.y.z"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, reply string) {
		n, err := pendingFromReply(reply)
		if err != nil {
			return
		}
		if !strings.HasPrefix(reply, "$JS.ACK.") {
			t.Fatalf("pendingFromReply(%q) = %d, accepted a non-ack subject", reply, n)
		}
	})
}
