package coord

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cogos-dev/coord/testenv"
)

// copyFixture copies testdata/cog (a seed workspace with a .cog tree) to a
// fresh root.
func copyFixture(t *testing.T) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "ws")
	err := filepath.WalkDir("testdata/cog", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel("testdata/cog", p)
		if err != nil {
			return err
		}
		dst := filepath.Join(root, rel)
		if d.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return root
}

type counts struct{ imported, skipped, failed int }

func checkCounts(t *testing.T, run string, r ImportReport, want map[ImportKind]counts) {
	t.Helper()
	for kind, w := range want {
		i, s, f := r.Count(kind)
		if (counts{i, s, f}) != w {
			t.Errorf("%s: %s: imported %d, skipped %d, failed %d; want %d, %d, %d", run, kind, i, s, f, w.imported, w.skipped, w.failed)
		}
	}
	if t.Failed() {
		t.Logf("%s report:\n%s", run, r)
		for _, it := range r.Failed {
			t.Logf("failed: %s", it)
		}
	}
}

// TestImportTwice imports the fixture tree twice: the first run loads what
// is valid and reports the rest, the second changes nothing.
func TestImportTwice(t *testing.T) {
	srv := testenv.Start(t)
	root := copyFixture(t)
	ctx := testCtx(t, 30*time.Second)
	imp := newClient(t, srv, "importer")
	erin := newClient(t, srv, "erin")
	bob := newClient(t, srv, "bob")

	// State made before the import: erin holds a path dave's old claim
	// names; bob holds his own old claim's path already.
	if _, err := erin.TryAcquire(ctx, "pkg/api/handler.go"); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.TryAcquire(ctx, "internal/db/schema.sql"); err != nil {
		t.Fatal(err)
	}

	r1, err := Import(ctx, imp, root)
	if err != nil {
		t.Fatalf("first import: %v", err)
	}
	checkCounts(t, "first import", r1, map[ImportKind]counts{
		ImportClaim:      {2, 1, 4},
		ImportHandoff:    {2, 0, 2},
		ImportBroadcast:  {5, 0, 1},
		ImportCheckpoint: {4, 0, 1},
	})
	wantFail := map[string]error{
		".cog/claims/src_util.go.claim":                 ErrBadValue,
		".cog/claims/no-agent.claim":                    ErrBadValue,
		".cog/claims/escape.claim":                      ErrInvalidPath,
		".cog/claims/pkg_api_handler.go.claim":          ErrClaimed,
		".cog/handoffs/1763637600-broken.json":          ErrBadValue,
		".cog/handoffs/1763637000-bob-dave.json":        ErrInvalidHandoff,
		".cog/broadcasts/general/1763636400-dave.msg":   ErrBadValue,
		".cog/signals/checkpoint/release-2.0/bad agent": ErrInvalidAgent,
	}
	for _, it := range r1.Failed {
		want, ok := wantFail[it.File]
		if !ok || !errors.Is(it.Err, want) {
			t.Errorf("failed item %s; want error %v", it, want)
		}
		delete(wantFail, it.File)
	}
	for f := range wantFail {
		t.Errorf("%s did not fail", f)
	}

	// bob accepts the imported handoff before the second run: a re-import
	// must not bring it back.
	pending, err := bob.Handoffs(ctx, "")
	if err != nil || len(pending) != 1 {
		t.Fatalf("bob's pending handoffs: %+v, %v; want 1", pending, err)
	}
	h := pending[0]
	wantTS := time.Date(2026, 11, 20, 9, 20, 0, 0, time.UTC)
	if h.From != "alice" || h.Artifact != "src/main.go" || !h.Timestamp.Equal(wantTS) {
		t.Fatalf("imported handoff = %+v; want from alice, src/main.go, %v", h, wantTS)
	}
	if _, err := bob.Accept(ctx, h.ID); err != nil {
		t.Fatalf("bob accepts imported handoff: %v", err)
	}

	r2, err := Import(ctx, imp, root)
	if err != nil {
		t.Fatalf("second import: %v", err)
	}
	checkCounts(t, "second import", r2, map[ImportKind]counts{
		ImportClaim:      {0, 3, 4},
		ImportHandoff:    {0, 2, 2},
		ImportBroadcast:  {0, 5, 1},
		ImportCheckpoint: {0, 4, 1},
	})
	if len(r2.Imported) != 0 {
		t.Errorf("second import imported %v", r2.Imported)
	}

	// Nothing duplicated, and the seed's data kept.
	claims, err := imp.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Claim{}
	for _, c := range claims {
		got[c.Path] = c
	}
	if len(claims) != 4 || got["src/main.go"].Agent != "alice" || got["docs/README.md"].Agent != "carol" ||
		got["internal/db/schema.sql"].Agent != "bob" || got["pkg/api/handler.go"].Agent != "erin" {
		t.Fatalf("claims after import: %+v", got)
	}
	main := got["src/main.go"]
	if main.Reason != "refactoring the entry point" || !main.ClaimedAt.Equal(time.Date(2026, 11, 20, 9, 14, 3, 512e6, time.UTC)) ||
		main.TTL() != DefaultImportClaimTTL {
		t.Fatalf("imported claim = %+v; want the file's reason and claimed_at, TTL %v", main, DefaultImportClaimTTL)
	}

	general, err := imp.Broadcasts(ctx, "general", 0)
	if err != nil {
		t.Fatal(err)
	}
	var texts []string
	for _, b := range general {
		texts = append(texts, b.Agent+": "+b.Message)
	}
	wantTexts := []string{
		"alice: starting work on the entry point",
		"bob: starting the schema migration", // same second as alice's
		"carol: docs freeze at noon",
	}
	if !slices.Equal(texts, wantTexts) {
		t.Fatalf("general = %q; want %q", texts, wantTexts)
	}
	if ts := general[1].Timestamp; !ts.Equal(time.Date(2026, 11, 20, 9, 0, 0, 987654321, time.UTC)) {
		t.Fatalf("bob's broadcast timestamp = %v; want the file's, to the nanosecond", ts)
	}
	if bs, err := imp.Broadcasts(ctx, "build-status", 0); err != nil || len(bs) != 2 {
		t.Fatalf("build-status: %d messages, %v; want 2", len(bs), err)
	}

	if hs, err := imp.Handoffs(ctx, "alice"); err != nil || len(hs) != 1 || hs[0].From != "carol" {
		t.Fatalf("alice's pending handoffs: %+v, %v; want one from carol", hs, err)
	}
	if hs, err := imp.Handoffs(ctx, "bob"); err != nil || len(hs) != 0 {
		t.Fatalf("bob's pending handoffs after accept and re-import: %+v, %v; want none", hs, err)
	}
	if arch, err := imp.HandoffArchive(ctx, "bob"); err != nil || len(arch) != 1 {
		t.Fatalf("bob's archive: %+v, %v; want the accepted one", arch, err)
	}
	if hs, err := imp.Handoffs(ctx, "dave"); err != nil || len(hs) != 0 {
		t.Fatalf("dave's pending (archived in the seed, and one malformed): %+v, %v; want none", hs, err)
	}

	for name, want := range map[string][]string{"phase-1": {"alice", "bob", "carol"}, "release-2.0": {"alice"}} {
		if got, err := imp.Arrivals(ctx, name); err != nil || !slices.Equal(got, want) {
			t.Fatalf("Arrivals(%s) = %v, %v; want %v", name, got, err, want)
		}
	}

	// The agent named in an old claim adopts it by claiming again.
	alice := newClient(t, srv, "alice")
	cl, err := alice.TryAcquire(ctx, "src/main.go", WithReason("back"))
	if err != nil || cl.Token != main.Token || !cl.Held() {
		t.Fatalf("alice adopts her imported claim: %+v, %v; want the same token %d, held", cl, err, main.Token)
	}
}

// TestImportClaimExpires: nobody renews an imported claim until its agent
// adopts it; one left alone expires with its lease.
func TestImportClaimExpires(t *testing.T) {
	srv := testenv.Start(t)
	root := mkWorkspace(t, "ws", map[string]string{
		".cog/claims/a.claim": `{"path":"a.go","agent":"ghost","reason":"gone","claimed_at":"2026-11-20T09:00:00Z"}`,
	})
	ctx := testCtx(t, 20*time.Second)
	imp := newClient(t, srv, "importer")
	r, err := Import(ctx, imp, root, WithImportClaimTTL(time.Second))
	if err != nil || len(r.Imported) != 1 {
		t.Fatalf("Import: %+v, %v", r, err)
	}
	if owner, err := imp.Owner(ctx, "a.go"); err != nil || owner != "ghost" {
		t.Fatalf("Owner = %q, %v; want ghost", owner, err)
	}
	other := newClient(t, srv, "other")
	acq, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	start := time.Now()
	if _, err := other.Acquire(acq, "a.go"); err != nil {
		t.Fatalf("Acquire after the imported lease: %v", err)
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Fatalf("imported claim with a 1s lease held for %v", d)
	}
}

func TestImportErrors(t *testing.T) {
	srv := testenv.Start(t)
	c := newClient(t, srv, "importer")
	ctx := testCtx(t, 10*time.Second)
	if _, err := Import(ctx, c, t.TempDir()); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("no .cog: %v; want fs.ErrNotExist", err)
	}
	root := copyFixture(t)
	if _, err := Import(ctx, c, root, WithImportClaimTTL(0)); !errors.Is(err, ErrInvalidOption) {
		t.Fatalf("TTL 0: %v; want ErrInvalidOption", err)
	}
	done, cancel := context.WithCancel(ctx)
	cancel()
	r, err := Import(done, c, root)
	if !errors.Is(err, context.Canceled) || len(r.Imported) != 0 {
		t.Fatalf("cancelled import: %+v, %v; want context.Canceled, nothing imported", r, err)
	}
	closed := newClient(t, srv, "closed")
	closed.Close()
	if _, err := Import(ctx, closed, root); !errors.Is(err, ErrClosed) {
		t.Fatalf("closed client: %v; want ErrClosed", err)
	}
}

// TestImportConcurrent: two imports of one tree at once still store each
// item once; between them every item is imported exactly once.
func TestImportConcurrent(t *testing.T) {
	srv := testenv.Start(t)
	root := copyFixture(t)
	ctx := testCtx(t, 30*time.Second)
	clients := []*Client{newClient(t, srv, "importer-1"), newClient(t, srv, "importer-2")}
	reports := make([]ImportReport, 2)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			reports[i], errs[i] = Import(ctx, c, root)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("import %d: %v", i, err)
		}
	}
	want := map[ImportKind]int{ImportClaim: 4, ImportHandoff: 2, ImportBroadcast: 5, ImportCheckpoint: 4}
	for kind, n := range want {
		i1, s1, _ := reports[0].Count(kind)
		i2, s2, _ := reports[1].Count(kind)
		if i1+i2 != n || s1+s2 != n {
			t.Errorf("%s: imported %d+%d, skipped %d+%d; want %d imports and %d skips in all", kind, i1, i2, s1, s2, n, n)
		}
	}
	c := clients[0]
	if bs, err := c.Broadcasts(ctx, "general", 0); err != nil || len(bs) != 3 {
		t.Fatalf("general: %d messages, %v; want 3", len(bs), err)
	}
	for agent, n := range map[string]int{"bob": 1, "alice": 1} {
		if hs, err := c.Handoffs(ctx, agent); err != nil || len(hs) != n {
			t.Fatalf("%s's pending: %d, %v; want %d", agent, len(hs), err, n)
		}
	}
	if cl, err := c.List(ctx); err != nil || len(cl) != 4 {
		t.Fatalf("claims: %d, %v; want 4", len(cl), err)
	}
}
