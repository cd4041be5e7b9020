package coord

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cogos-dev/coord/kvstore"
	"github.com/cogos-dev/coord/testenv"
)

func handoffIDs(hs []Handoff) []string {
	ids := make([]string, len(hs))
	for i, h := range hs {
		ids[i] = h.ID
	}
	return ids
}

// A handoff to an agent that never connected survives a restart, is pending
// until accepted once, then shows only in the archive.
func TestHandoffLifecycle(t *testing.T) {
	srv := testenv.Start(t)
	ctx := testCtx(t, 30*time.Second)
	alice := newClient(t, srv, "alice")
	sent, err := alice.Handoff(ctx, "bob", "src/feature.go", "finish the tests")
	if err != nil {
		t.Fatalf("Handoff: %v", err)
	}
	if sent.ID == "" || sent.From != "alice" || sent.To != "bob" || sent.Status != HandoffPending || sent.Timestamp.IsZero() {
		t.Fatalf("Handoff returned %+v", sent)
	}
	second, err := alice.Handoff(ctx, "bob", "docs/x.md", "")
	if err != nil {
		t.Fatalf("second Handoff: %v", err)
	}

	srv.Restart()

	bob := newClient(t, srv, "bob")
	carol := newClient(t, srv, "carol")
	pending, err := bob.Handoffs(ctx, "")
	if err != nil {
		t.Fatalf("Handoffs: %v", err)
	}
	if got := handoffIDs(pending); len(got) != 2 || got[0] != sent.ID || got[1] != second.ID {
		t.Fatalf("pending after restart = %v, want [%s %s] oldest first", got, sent.ID, second.ID)
	}
	if p := pending[0]; p.Artifact != "src/feature.go" || p.Message != "finish the tests" || p.From != "alice" || !p.Timestamp.Equal(sent.Timestamp) {
		t.Fatalf("pending[0] = %+v, want what was sent %+v", p, sent)
	}
	// Listing does not consume.
	if again, err := carol.Handoffs(ctx, "bob"); err != nil || len(again) != 2 {
		t.Fatalf("second listing (by carol) = %d, %v; want 2", len(again), err)
	}

	if _, err := carol.Accept(ctx, sent.ID); !errors.Is(err, ErrNotRecipient) {
		t.Fatalf("carol Accept: %v, want ErrNotRecipient", err)
	}
	if _, err := carol.Reject(ctx, sent.ID, "mine now"); !errors.Is(err, ErrNotRecipient) {
		t.Fatalf("carol Reject: %v, want ErrNotRecipient", err)
	}
	acc, err := bob.Accept(ctx, sent.ID)
	if err != nil {
		t.Fatalf("Accept: %v", err)
	}
	if acc.Status != HandoffAccepted || acc.DecidedAt.IsZero() || acc.ID != sent.ID {
		t.Fatalf("Accept returned %+v", acc)
	}
	again, err := bob.Accept(ctx, sent.ID)
	if err != nil || again.Status != HandoffAccepted || !again.DecidedAt.Equal(acc.DecidedAt) {
		t.Fatalf("second Accept = %+v, %v; want the same accepted handoff", again, err)
	}
	if _, err := bob.Reject(ctx, sent.ID, "changed my mind"); !errors.Is(err, ErrHandoffDecided) {
		t.Fatalf("Reject after Accept: %v, want ErrHandoffDecided", err)
	}
	pending, err = bob.Handoffs(ctx, "")
	if err != nil || len(pending) != 1 || pending[0].ID != second.ID {
		t.Fatalf("pending after accept = %v, %v; want only %s", handoffIDs(pending), err, second.ID)
	}
	arch, err := bob.HandoffArchive(ctx, "")
	if err != nil || len(arch) != 1 || arch[0].ID != sent.ID || arch[0].Status != HandoffAccepted {
		t.Fatalf("archive = %+v, %v; want the accepted handoff", arch, err)
	}
	if _, err := carol.Accept(ctx, sent.ID); !errors.Is(err, ErrNotRecipient) {
		t.Fatalf("carol Accept of an accepted handoff: %v, want ErrNotRecipient", err)
	}
}

func TestHandoffReject(t *testing.T) {
	srv := testenv.Start(t)
	ctx := testCtx(t, 20*time.Second)
	alice := newClient(t, srv, "alice")
	bob := newClient(t, srv, "bob")
	h, err := alice.Handoff(ctx, "bob", "task-7", "")
	if err != nil {
		t.Fatalf("Handoff: %v", err)
	}
	rej, err := bob.Reject(ctx, h.ID, "no time")
	if err != nil || rej.Status != HandoffRejected || rej.Reason != "no time" {
		t.Fatalf("Reject = %+v, %v", rej, err)
	}
	if again, err := bob.Reject(ctx, h.ID, "other reason"); err != nil || again.Reason != "no time" {
		t.Fatalf("second Reject = %+v, %v; want the first rejection unchanged", again, err)
	}
	if got, err := bob.Accept(ctx, h.ID); !errors.Is(err, ErrHandoffDecided) || got.Status != HandoffRejected {
		t.Fatalf("Accept after Reject = %+v, %v; want ErrHandoffDecided and the rejection", got, err)
	}
	if p, err := bob.Handoffs(ctx, ""); err != nil || len(p) != 0 {
		t.Fatalf("pending after reject = %v, %v", handoffIDs(p), err)
	}
	arch, err := bob.HandoffArchive(ctx, "bob")
	if err != nil || len(arch) != 1 || arch[0].Status != HandoffRejected || arch[0].Reason != "no time" {
		t.Fatalf("archive = %+v, %v", arch, err)
	}
}

// Agents whose names are wildcards or hold dots see only their own handoffs.
func TestHandoffWildcardAgentsIsolated(t *testing.T) {
	srv := testenv.Start(t)
	ctx := testCtx(t, 30*time.Second)
	sender := newClient(t, srv, "sender")
	agents := []string{"*", ">", "a.b", "a", "b", "a.*", "a.>"}
	sent := map[string]string{}
	for _, a := range agents {
		h, err := sender.Handoff(ctx, a, "artifact for "+a, "")
		if err != nil {
			t.Fatalf("Handoff to %q: %v", a, err)
		}
		sent[a] = h.ID
	}
	for _, a := range agents {
		c := newClient(t, srv, a)
		got, err := c.Handoffs(ctx, "")
		if err != nil {
			t.Fatalf("%q Handoffs: %v", a, err)
		}
		if len(got) != 1 || got[0].ID != sent[a] || got[0].To != a {
			t.Fatalf("%q sees %+v, want only its own %s", a, got, sent[a])
		}
		for _, other := range agents {
			if other == a {
				continue
			}
			if _, err := c.Accept(ctx, sent[other]); !errors.Is(err, ErrNotRecipient) {
				t.Fatalf("%q Accept of %q's handoff: %v, want ErrNotRecipient", a, other, err)
			}
		}
		for _, id := range []string{"*", ">", "", "x.y", strings.ToUpper(sent[a])} {
			if _, err := c.Accept(ctx, id); !errors.Is(err, ErrHandoffNotFound) {
				t.Fatalf("%q Accept(%q): %v, want ErrHandoffNotFound", a, id, err)
			}
		}
	}
	// Nobody's listing (under a literal name) leaks another's.
	if got, err := sender.Handoffs(ctx, "sender"); err != nil || len(got) != 0 {
		t.Fatalf("sender's own pending: %v, %v", handoffIDs(got), err)
	}
}

func TestHandoffBadInput(t *testing.T) {
	srv := testenv.Start(t)
	ctx := testCtx(t, 20*time.Second)
	alice := newClient(t, srv, "alice")
	long := func(n int) string { return strings.Repeat("x", n) }
	tests := []struct {
		name              string
		to, artifact, msg string
		opts              []HandoffOption
		want              error
	}{
		{"empty recipient", "", "a", "m", nil, ErrInvalidAgent},
		{"recipient with space", "b ob", "a", "m", nil, ErrInvalidAgent},
		{"recipient with NUL", "b\x00", "a", "m", nil, ErrInvalidAgent},
		{"empty artifact", "bob", "", "m", nil, ErrInvalidHandoff},
		{"artifact too long", "bob", long(MaxArtifactBytes + 1), "m", nil, ErrInvalidHandoff},
		{"message too long", "bob", "a", long(MaxHandoffMessageSize + 1), nil, ErrInvalidHandoff},
		{"invalid UTF-8", "bob", "a", "\xff\xfe", nil, ErrInvalidHandoff},
		{"too many claims", "bob", "a", "", []HandoffOption{WithClaims(make([]string, MaxHandoffClaims+1)...)}, ErrInvalidHandoff},
		{"invalid claim path", "bob", "a", "", []HandoffOption{WithClaims("../escape")}, ErrInvalidPath},
		{"claim not held", "bob", "a", "", []HandoffOption{WithClaims("free.go")}, ErrNotOwner},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := alice.Handoff(ctx, tt.to, tt.artifact, tt.msg, tt.opts...)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Handoff: %v, want %v", err, tt.want)
			}
		})
	}
	if _, err := alice.Handoffs(ctx, "b ob"); !errors.Is(err, ErrInvalidAgent) {
		t.Fatalf("Handoffs(invalid): %v", err)
	}
	if _, err := alice.Reject(ctx, "00000000-0000-0000-0000-000000000000", long(MaxHandoffReasonBytes+1)); !errors.Is(err, ErrInvalidHandoff) {
		t.Fatalf("Reject with long reason: %v", err)
	}
	if _, err := alice.Accept(ctx, "00000000-0000-0000-0000-000000000000"); !errors.Is(err, ErrHandoffNotFound) {
		t.Fatalf("Accept unknown: %v", err)
	}
	// Limits allowed exactly at the edge, and nothing half-written before.
	if _, err := alice.Handoff(ctx, "bob", long(MaxArtifactBytes), long(MaxHandoffMessageSize)); err != nil {
		t.Fatalf("Handoff at the limits: %v", err)
	}
	if p, err := alice.Handoffs(ctx, "bob"); err != nil || len(p) != 1 {
		t.Fatalf("bob's pending = %d, %v; want only the one valid handoff", len(p), err)
	}
}

// Concurrent accepts and rejects by several clients of the recipient: one
// decision wins, every caller learns it, the archive holds it once.
func TestHandoffConcurrentDecisions(t *testing.T) {
	srv := testenv.Start(t)
	ctx := testCtx(t, 20*time.Second)
	alice := newClient(t, srv, "alice")
	h, err := alice.Handoff(ctx, "bob", "x", "")
	if err != nil {
		t.Fatal(err)
	}
	bobs := make([]*Client, 4)
	for i := range bobs {
		bobs[i] = newClient(t, srv, "bob")
	}
	type result struct {
		accept bool
		h      Handoff
		err    error
	}
	results := make(chan result, 16)
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := bobs[i%len(bobs)]
			if i%2 == 0 {
				got, err := c.Accept(ctx, h.ID)
				results <- result{true, got, err}
				return
			}
			got, err := c.Reject(ctx, h.ID, "busy")
			results <- result{false, got, err}
		}()
	}
	wg.Wait()
	close(results)
	arch, err := alice.HandoffArchive(ctx, "bob")
	if err != nil || len(arch) != 1 {
		t.Fatalf("archive = %+v, %v; want one decision", arch, err)
	}
	won := arch[0]
	for r := range results {
		mine := r.accept == (won.Status == HandoffAccepted)
		switch {
		case mine && r.err != nil:
			t.Fatalf("caller on the winning side got %v", r.err)
		case !mine && !errors.Is(r.err, ErrHandoffDecided):
			t.Fatalf("caller on the losing side got %v, want ErrHandoffDecided", r.err)
		}
		if r.h.Status != won.Status || !r.h.DecidedAt.Equal(won.DecidedAt) {
			t.Fatalf("caller saw %s at %v, archive says %s at %v", r.h.Status, r.h.DecidedAt, won.Status, won.DecidedAt)
		}
	}
}

// An accept that recorded its decision but died before deleting the pending
// form leaves nothing visible: the listing hides it, a later accept cleans up.
func TestHandoffDecidedButNotDeleted(t *testing.T) {
	srv := testenv.Start(t)
	ctx := testCtx(t, 20*time.Second)
	alice := newClient(t, srv, "alice")
	bob := newClient(t, srv, "bob")
	h, err := alice.Handoff(ctx, "bob", "x", "")
	if err != nil {
		t.Fatal(err)
	}
	keep, err := alice.Handoff(ctx, "bob", "y", "")
	if err != nil {
		t.Fatal(err)
	}
	pend, done, err := bob.handoffSubjects("bob")
	if err != nil {
		t.Fatal(err)
	}
	rec := handoffRecord{Handoff: h}
	rec.Status, rec.DecidedAt = HandoffAccepted, time.Now().UTC()
	data, _ := json.Marshal(rec)
	if _, err := bob.js.Publish(ctx, done+"."+h.ID, data); err != nil {
		t.Fatal(err)
	}
	got, err := bob.Handoffs(ctx, "")
	if err != nil || len(got) != 1 || got[0].ID != keep.ID {
		t.Fatalf("pending = %v, %v; want only %s (the decided one hidden)", handoffIDs(got), err, keep.ID)
	}
	acc, err := bob.Accept(ctx, h.ID)
	if err != nil || acc.Status != HandoffAccepted {
		t.Fatalf("Accept = %+v, %v", acc, err)
	}
	st, _ := bob.handoffStream(ctx)
	if _, _, ok, err := getHandoff(ctx, st, pend+"."+h.ID); ok || err != nil {
		t.Fatalf("pending form still there after accept (ok=%v, err=%v)", ok, err)
	}
}

// Values that do not parse, or that sit on another recipient's subject, are
// skipped; the rest are listed.
func TestHandoffSkipsUnreadable(t *testing.T) {
	srv := testenv.Start(t)
	ctx := testCtx(t, 20*time.Second)
	alice := newClient(t, srv, "alice")
	h, err := alice.Handoff(ctx, "bob", "x", "")
	if err != nil {
		t.Fatal(err)
	}
	pend, _, _ := alice.handoffSubjects("bob")
	forged := h
	forged.ID, forged.To = "11111111-1111-1111-1111-111111111111", "carol"
	fdata, _ := json.Marshal(handoffRecord{Handoff: forged})
	for subj, data := range map[string][]byte{
		pend + ".22222222-2222-2222-2222-222222222222": []byte("junk"),
		pend + "." + forged.ID:                         fdata,
		pend + ".33333333-3333-3333-3333-333333333333": []byte(`{"id":"33333333-3333-3333-3333-333333333333"}`),
	} {
		if _, err := alice.js.Publish(ctx, subj, data); err != nil {
			t.Fatal(err)
		}
	}
	got, err := alice.Handoffs(ctx, "bob")
	if err != nil || len(got) != 1 || got[0].ID != h.ID {
		t.Fatalf("Handoffs = %v, %v; want only %s", handoffIDs(got), err, h.ID)
	}
	bob := newClient(t, srv, "bob")
	if _, err := bob.Accept(ctx, "22222222-2222-2222-2222-222222222222"); !errors.Is(err, ErrBadValue) {
		t.Fatalf("Accept of junk: %v, want ErrBadValue", err)
	}
}

// Listings page through more handoffs than one batch holds, in order.
func TestHandoffManyPending(t *testing.T) {
	srv := testenv.Start(t)
	ctx := testCtx(t, 30*time.Second)
	alice := newClient(t, srv, "alice", WithMemoryStorage())
	bob := newClient(t, srv, "bob")
	const n = 2*batchSize + 10
	var ids []string
	for i := range n {
		h, err := alice.Handoff(ctx, "bob", fmt.Sprintf("a%d", i), "")
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, h.ID)
	}
	// Decide a few, spread out, so the decided check spans chunks.
	decided := map[string]bool{}
	for i := 0; i < n; i += 97 {
		if _, err := bob.Accept(ctx, ids[i]); err != nil {
			t.Fatal(err)
		}
		decided[ids[i]] = true
	}
	got, err := bob.Handoffs(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, id := range ids {
		if !decided[id] {
			want = append(want, id)
		}
	}
	if !slices.Equal(handoffIDs(got), want) {
		t.Fatalf("listed %d handoffs, want %d in send order", len(got), len(want))
	}
	arch, err := bob.HandoffArchive(ctx, "")
	if err != nil || len(arch) != len(decided) {
		t.Fatalf("archive = %d, %v; want %d", len(arch), err, len(decided))
	}
}

func TestHandoffClosedClient(t *testing.T) {
	srv := testenv.Start(t)
	ctx := testCtx(t, 10*time.Second)
	c := newClient(t, srv, "alice")
	c.Close()
	if _, err := c.Handoff(ctx, "bob", "x", ""); !errors.Is(err, ErrClosed) {
		t.Fatalf("Handoff: %v", err)
	}
	if _, err := c.Handoffs(ctx, ""); !errors.Is(err, ErrClosed) {
		t.Fatalf("Handoffs: %v", err)
	}
	if _, err := c.HandoffArchive(ctx, ""); !errors.Is(err, ErrClosed) {
		t.Fatalf("HandoffArchive: %v", err)
	}
	if _, err := c.Accept(ctx, "00000000-0000-0000-0000-000000000000"); !errors.Is(err, ErrClosed) {
		t.Fatalf("Accept: %v", err)
	}
}

// With the server down, calls fail with ErrUnavailable within their
// context instead of hanging.
func TestHandoffServerDown(t *testing.T) {
	srv := testenv.Start(t)
	ctx := testCtx(t, 20*time.Second)
	c := newClient(t, srv, "alice")
	if _, err := c.Handoffs(ctx, ""); err != nil {
		t.Fatal(err)
	}
	srv.Shutdown()
	for name, call := range map[string]func(context.Context) error{
		"Handoff":  func(ctx context.Context) error { _, err := c.Handoff(ctx, "bob", "x", ""); return err },
		"Handoffs": func(ctx context.Context) error { _, err := c.Handoffs(ctx, ""); return err },
		"Accept": func(ctx context.Context) error {
			_, err := c.Accept(ctx, "00000000-0000-0000-0000-000000000000")
			return err
		},
	} {
		cctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		start := time.Now()
		err := call(cctx)
		cancel()
		if !errors.Is(err, ErrUnavailable) {
			t.Errorf("%s with the server down: %v, want ErrUnavailable", name, err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("%s took %v", name, d)
		}
	}
}

// The JSON form keeps the seed's field names; a pending handoff has no
// decision fields.
func TestHandoffJSON(t *testing.T) {
	h := Handoff{ID: "i", From: "a", To: "b", Artifact: "x", Message: "m", Timestamp: time.Unix(0, 0).UTC(), Status: HandoffPending}
	b, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"id":"i","from":"a","to":"b","artifact":"x","message":"m","timestamp":"1970-01-01T00:00:00Z","status":"pending"}`
	if string(b) != want {
		t.Fatalf("JSON = %s\nwant   %s", b, want)
	}
}

// A stream created with settings handoffs cannot work with is refused with
// a clear error rather than failing on the first decision.
func TestHandoffIncompatibleStream(t *testing.T) {
	srv := testenv.Start(t)
	ctx := testCtx(t, 10*time.Second)
	js := srv.JetStream(t)
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "COORD_HANDOFFS", Subjects: []string{"coord.handoff.>"}}); err != nil {
		t.Fatal(err)
	}
	c := newClient(t, srv, "alice")
	_, err := c.Handoff(ctx, "bob", "x", "")
	if !errors.Is(err, kvstore.ErrConfigDrift) {
		t.Fatalf("Handoff on an incompatible stream: %v, want ErrConfigDrift", err)
	}
}

// Namespaces are separate: a handoff to bob in one is not bob's in another.
func TestHandoffNamespaces(t *testing.T) {
	srv := testenv.Start(t)
	ctx := testCtx(t, 10*time.Second)
	other := newClient(t, srv, "alice", WithNamespace("other"))
	h, err := other.Handoff(ctx, "bob", "x", "")
	if err != nil {
		t.Fatal(err)
	}
	bob := newClient(t, srv, "bob")
	if got, err := bob.Handoffs(ctx, ""); err != nil || len(got) != 0 {
		t.Fatalf("bob in ns test sees %v, %v", handoffIDs(got), err)
	}
	if _, err := bob.Accept(ctx, h.ID); !errors.Is(err, ErrHandoffNotFound) {
		t.Fatalf("bob in ns test accepting ns other's handoff: %v, want ErrHandoffNotFound", err)
	}
	bobOther := newClient(t, srv, "bob", WithNamespace("other"))
	if _, err := bobOther.Accept(ctx, h.ID); err != nil {
		t.Fatalf("bob in ns other: %v", err)
	}
}
