package coord

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/cogos-dev/coord/testenv"
)

// seedEnv starts a server, points the package-level functions at it, and
// returns a fresh workspace root whose namespace is ns. Default clients are
// closed when the test ends.
func seedEnv(t *testing.T, ns string) (*testenv.Server, string) {
	t.Helper()
	srv := testenv.Start(t)
	t.Setenv("COG_NATS_URL", srv.URL())
	t.Setenv("NATS_URL", "")
	t.Setenv("COG_NAMESPACE", "")
	t.Setenv("COG_CLAIM_TTL", "")
	t.Setenv("COG_AGENT_ID", "alice")
	root := mkWorkspace(t, "ws", map[string]string{".cog/namespace": ns + "\n"})
	t.Cleanup(func() {
		if err := CloseDefaultClients(); err != nil {
			t.Errorf("CloseDefaultClients: %v", err)
		}
	})
	return srv, root
}

// as switches the agent the package-level functions act for, the way two
// seed agents differ: by COG_AGENT_ID.
func as(t *testing.T, agent string) { t.Setenv("COG_AGENT_ID", agent) }

// TestSeedClaimsTwoAgents ports the seed's claim usage: two agents, told
// apart by COG_AGENT_ID, compete for one file.
func TestSeedClaimsTwoAgents(t *testing.T) {
	_, root := seedEnv(t, "seed-claims")

	as(t, "alice")
	cl, err := CreateClaim(root, "src/main.go", "refactor")
	if err != nil {
		t.Fatalf("alice CreateClaim: %v", err)
	}
	if cl.Path != "src/main.go" || cl.Agent != "alice" || cl.Reason != "refactor" || cl.ClaimedAt.IsZero() || cl.Namespace != "seed-claims" {
		t.Fatalf("claim = %+v", cl)
	}
	// Re-claim by the holder renews (the seed's rule) and keeps the token.
	again, err := CreateClaim(root, "./src/main.go", "refactor, part 2")
	if err != nil || again.Token != cl.Token || again.Reason != "refactor, part 2" {
		t.Fatalf("alice re-claim: %+v, %v; want same token %d, new reason", again, err, cl.Token)
	}

	as(t, "bob")
	_, err = CreateClaim(root, filepath.Join(root, "src", "main.go"), "fix bug")
	var ce *ClaimedError
	if !errors.As(err, &ce) || ce.Owner != "alice" || !errors.Is(err, ErrClaimed) {
		t.Fatalf("bob CreateClaim: %v; want ClaimedError owner alice", err)
	}
	if !IsClaimed(root, "src/main.go") {
		t.Fatal("IsClaimed = false while alice holds it")
	}
	if owner, err := ClaimOwner(root, "src//main.go"); err != nil || owner != "alice" {
		t.Fatalf("ClaimOwner = %q, %v; want alice", owner, err)
	}
	if err := ReleaseClaim(root, "src/main.go"); !errors.Is(err, ErrNotOwner) {
		t.Fatalf("bob ReleaseClaim of alice's: %v; want ErrNotOwner", err)
	}
	if _, err := CreateClaim(root, "docs/README.md", "docs"); err != nil {
		t.Fatalf("bob CreateClaim docs: %v", err)
	}

	list, err := ListClaims(root)
	if err != nil {
		t.Fatalf("ListClaims: %v", err)
	}
	got := map[string]string{}
	for _, c := range list {
		got[c.Path] = c.Agent
	}
	if len(list) != 2 || got["src/main.go"] != "alice" || got["docs/README.md"] != "bob" {
		t.Fatalf("ListClaims = %v; want src/main.go:alice docs/README.md:bob", got)
	}

	as(t, "alice")
	if err := ReleaseClaim(root, root+"/src/main.go"); err != nil {
		t.Fatalf("alice ReleaseClaim: %v", err)
	}
	if IsClaimed(root, "src/main.go") {
		t.Fatal("IsClaimed = true after release")
	}
	if _, err := ClaimOwner(root, "src/main.go"); !errors.Is(err, ErrNotClaimed) {
		t.Fatalf("ClaimOwner of a free path: %v; want ErrNotClaimed", err)
	}
	if err := ReleaseClaim(root, "src/main.go"); err != nil {
		t.Fatalf("releasing a free path: %v; want nil", err)
	}

	as(t, "bob")
	cb, err := CreateClaim(root, "src/main.go", "fix bug")
	if err != nil || cb.Agent != "bob" || cb.Token <= cl.Token {
		t.Fatalf("bob CreateClaim after release: %+v, %v; want bob with a larger token than %d", cb, err, cl.Token)
	}
}

// TestSeedPathForms: every spelling of a path inside the root is one claim;
// paths outside are rejected before reaching the server.
func TestSeedPathForms(t *testing.T) {
	_, root := seedEnv(t, "seed-paths")
	if _, err := CreateClaim(root, "src/a.go", "r"); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"src/a.go", "./src/a.go", "src//a.go", root + "/src/a.go"} {
		if owner, err := ClaimOwner(root, p); err != nil || owner != "alice" {
			t.Errorf("ClaimOwner(%q) = %q, %v; want alice", p, owner, err)
		}
		if _, err := CreateClaim(root, p, "r"); err != nil {
			t.Errorf("re-claim through %q: %v", p, err)
		}
	}
	for _, p := range []string{"../x", "/etc/passwd", ""} {
		if _, err := CreateClaim(root, p, "r"); !errors.Is(err, ErrInvalidPath) {
			t.Errorf("CreateClaim(%q): %v; want ErrInvalidPath", p, err)
		}
		if err := ReleaseClaim(root, p); !errors.Is(err, ErrInvalidPath) {
			t.Errorf("ReleaseClaim(%q): %v; want ErrInvalidPath", p, err)
		}
		if _, err := ClaimOwner(root, p); !errors.Is(err, ErrInvalidPath) {
			t.Errorf("ClaimOwner(%q): %v; want ErrInvalidPath", p, err)
		}
		if IsClaimed(root, p) {
			t.Errorf("IsClaimed(%q) = true", p)
		}
	}
	if list, err := ListClaims(root); err != nil || len(list) != 1 {
		t.Fatalf("ListClaims = %d claims, %v; want 1", len(list), err)
	}
}

// TestSeedWorkspacesIsolated: two workspaces on one server never share
// claims; two checkouts of one repository do.
func TestSeedWorkspacesIsolated(t *testing.T) {
	seedEnv(t, "unused") // these roots name their namespaces by git remote
	rootA := mkWorkspace(t, "a", map[string]string{".git/config": gitConfig("https://github.com/o/r.git")})
	rootA2 := mkWorkspace(t, "a-second-checkout", map[string]string{".git/config": gitConfig("git@github.com:o/r")})
	rootB := mkWorkspace(t, "a", map[string]string{".git/config": gitConfig("git@github.com:o/other.git")})
	if _, err := CreateClaim(rootA, "x.go", "r"); err != nil {
		t.Fatal(err)
	}
	as(t, "bob")
	if _, err := CreateClaim(rootA2, "x.go", "r"); !errors.Is(err, ErrClaimed) {
		t.Fatalf("same repo, other checkout: %v; want ErrClaimed", err)
	}
	if _, err := CreateClaim(rootB, "x.go", "r"); err != nil {
		t.Fatalf("other repo: %v; want its own claim", err)
	}
}

// TestSeedConcurrentDefaultClient: many goroutines calling the package-level
// functions at once share one default client per agent, and exactly one of
// them wins a contested path.
func TestSeedConcurrentDefaultClient(t *testing.T) {
	_, root := seedEnv(t, "seed-conc")
	const n = 32
	var wg sync.WaitGroup
	var mu sync.Mutex
	winners, claimedErrs := 0, 0

	// Concurrent first calls share one client (one connection attempt).
	got := make([]*Client, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := DefaultClient(root)
			if err != nil {
				t.Errorf("DefaultClient: %v", err)
			}
			got[i] = c
		}()
	}
	wg.Wait()
	for i, c := range got {
		if c == nil || c != got[0] {
			t.Fatalf("call %d got client %p, call 0 got %p; want one shared client", i, c, got[0])
		}
	}
	if err := CloseDefaultClients(); err != nil {
		t.Fatal(err)
	}

	errs := make(chan error, 2*n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := CreateClaim(root, fmt.Sprintf("own/%d", i), "mine"); err != nil {
				errs <- fmt.Errorf("own/%d: %w", i, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	defaults.mu.Lock()
	clients := len(defaults.m)
	defaults.mu.Unlock()
	if clients != 1 {
		t.Fatalf("%d default clients after concurrent calls by one agent; want 1", clients)
	}
	shared, err := DefaultClient(root)
	if err != nil {
		t.Fatal(err)
	}
	if held := len(shared.Held()); held != n {
		t.Fatalf("the default client holds %d claims; want all %d", held, n)
	}

	// Contest: each goroutine uses a client of its own (a different agent,
	// so a different default client), all created concurrently.
	c0, err := DefaultClient(root)
	if err != nil {
		t.Fatal(err)
	}
	var ready sync.WaitGroup
	ready.Add(n)
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := defaultClient(defaultKey{url: natsURL(), namespace: c0.Namespace(), agent: fmt.Sprintf("agent-%d", i)})
			ready.Done()
			if err != nil {
				t.Errorf("defaultClient: %v", err)
				return
			}
			<-start
			_, err = c.TryAcquire(testCtx(t, 10*time.Second), "contested")
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				winners++
			case errors.Is(err, ErrClaimed):
				claimedErrs++
			default:
				t.Errorf("agent-%d: %v", i, err)
			}
		}()
	}
	ready.Wait()
	close(start)
	wg.Wait()
	if winners != 1 || claimedErrs != n-1 {
		t.Fatalf("contest: %d winners, %d ErrClaimed; want 1 and %d", winners, claimedErrs, n-1)
	}
	if list, err := ListClaims(root); err != nil || len(list) != n+1 {
		t.Fatalf("ListClaims: %d, %v; want %d", len(list), err, n+1)
	}
}

// TestSeedLeaseEndsWithProcess: a claim made through CreateClaim lives while
// its process (here: its default client) lives, well past its TTL, and is
// gone within the TTL once the process stops without releasing it.
func TestSeedLeaseEndsWithProcess(t *testing.T) {
	_, root := seedEnv(t, "seed-lease")
	t.Setenv("COG_CLAIM_TTL", "1s")
	cl, err := CreateClaim(root, "held.txt", "lease")
	if err != nil {
		t.Fatal(err)
	}
	if cl.TTLSeconds != 1 {
		t.Fatalf("TTLSeconds = %d; want 1 (COG_CLAIM_TTL)", cl.TTLSeconds)
	}
	select {
	case <-cl.Lost():
		t.Fatalf("claim lost while the process lives: %v", cl.Err())
	case <-time.After(2500 * time.Millisecond): // more than twice the TTL
	}
	if !IsClaimed(root, "held.txt") {
		t.Fatal("claim expired while its process was alive")
	}
	if err := CloseDefaultClients(); err != nil { // the process "dies"
		t.Fatal(err)
	}
	as(t, "bob")
	deadline := time.Now().Add(5 * time.Second)
	for IsClaimed(root, "held.txt") {
		if time.Now().After(deadline) {
			t.Fatal("claim still held 5s after its holder stopped (TTL 1s)")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := CreateClaim(root, "held.txt", "mine now"); err != nil {
		t.Fatalf("bob after expiry: %v", err)
	}
}

func TestSeedBadEnv(t *testing.T) {
	_, root := seedEnv(t, "seed-ttl")
	t.Setenv("COG_CLAIM_TTL", "soon")
	if _, err := CreateClaim(root, "a", "r"); !errors.Is(err, ErrInvalidOption) {
		t.Fatalf("COG_CLAIM_TTL=soon: %v; want ErrInvalidOption", err)
	}
	t.Setenv("COG_CLAIM_TTL", "")
	t.Setenv("COG_AGENT_ID", "two words")
	if _, err := CreateClaim(root, "a", "r"); !errors.Is(err, ErrInvalidAgent) || !strings.Contains(err.Error(), "COG_AGENT_ID") {
		t.Fatalf("COG_AGENT_ID with a space: %v; want ErrInvalidAgent naming COG_AGENT_ID", err)
	}
}

// TestSeedUnavailable: with no server the error says what to run.
func TestSeedUnavailable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	t.Setenv("COG_NATS_URL", "nats://"+addr)
	t.Setenv("COG_NAMESPACE", "nowhere")
	t.Cleanup(func() { CloseDefaultClients() })
	root := t.TempDir()
	start := time.Now()
	_, err = CreateClaim(root, "a.go", "r")
	if !errors.Is(err, ErrUnavailable) || strings.Count(err.Error(), "coord-agent serve") != 1 || !strings.Contains(err.Error(), "COG_NATS_URL") {
		t.Fatalf("CreateClaim with no server: %v; want ErrUnavailable naming coord-agent serve (once) and COG_NATS_URL", err)
	}
	t.Logf("error: %v", err)
	if _, err := ListClaims(root); !errors.Is(err, ErrUnavailable) || strings.Count(err.Error(), "coord-agent serve") != 1 {
		t.Fatalf("ListClaims with no server: %v", err)
	}
	if IsClaimed(root, "a.go") {
		t.Fatal("IsClaimed with no server = true")
	}
	if d := time.Since(start); d > 8*time.Second {
		t.Fatalf("failing took %v", d)
	}
	defaults.mu.Lock()
	n := len(defaults.m)
	defaults.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d failed default clients cached; want 0 (retry on next call)", n)
	}
}

// TestSeedEnvFallbacks: NATS_URL is used when COG_NATS_URL is unset, and
// the agent falls back to USER.
func TestSeedEnvFallbacks(t *testing.T) {
	srv, root := seedEnv(t, "seed-env")
	t.Setenv("COG_NATS_URL", "")
	t.Setenv("NATS_URL", srv.URL())
	t.Setenv("COG_AGENT_ID", "")
	t.Setenv("USER", "carol")
	cl, err := CreateClaim(root, "a", "r")
	if err != nil || cl.Agent != "carol" {
		t.Fatalf("CreateClaim = %+v, %v; want agent carol via NATS_URL", cl, err)
	}
	t.Setenv("USER", "")
	if AgentID() != "root" {
		t.Fatalf("AgentID with nothing set = %q; want root", AgentID())
	}
}

// recordingHolder is a ClaimHolder that records requests and delegates.
type recordingHolder struct {
	next ClaimHolder
	mu   sync.Mutex
	reqs []ClaimRequest
}

func (h *recordingHolder) HoldClaim(ctx context.Context, req ClaimRequest) (*Claim, error) {
	h.mu.Lock()
	h.reqs = append(h.reqs, req)
	h.mu.Unlock()
	return h.next.HoldClaim(ctx, req)
}

func (h *recordingHolder) ReleaseClaim(ctx context.Context, req ClaimRequest) error {
	h.mu.Lock()
	h.reqs = append(h.reqs, req)
	h.mu.Unlock()
	return h.next.ReleaseClaim(ctx, req)
}

// TestSeedClaimHolderHook: the sidecar's hook sees resolved requests and
// makes the claims.
func TestSeedClaimHolderHook(t *testing.T) {
	_, root := seedEnv(t, "seed-hook")
	rec := &recordingHolder{}
	rec.next = SetClaimHolder(rec)
	t.Cleanup(func() { SetClaimHolder(nil) })
	if _, err := CreateClaim(root, root+"/dir/f.txt", "why"); err != nil {
		t.Fatal(err)
	}
	if err := ReleaseClaim(root, "dir/f.txt"); err != nil {
		t.Fatal(err)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.reqs) != 2 {
		t.Fatalf("holder saw %d requests; want 2", len(rec.reqs))
	}
	r := rec.reqs[0]
	if r.Namespace != "seed-hook" || r.Agent != "alice" || r.Path != "dir/f.txt" || r.Reason != "why" || !filepath.IsAbs(r.Root) {
		t.Fatalf("request = %+v", r)
	}
}

// TestSeedPort is the seed API used the way seed callers use it: package
// functions, a workspace root, the agent from COG_AGENT_ID. Two agents
// compete for a claim, hand work over, broadcast, and meet at a checkpoint.
func TestSeedPort(t *testing.T) {
	_, root := seedEnv(t, "seed-port")

	// Identity.
	as(t, "alice")
	if AgentID() != "alice" {
		t.Fatalf("AgentID = %q", AgentID())
	}

	// Claims: alice wins, bob is told who holds it.
	if _, err := CreateClaim(root, "src/main.go", "refactor"); err != nil {
		t.Fatalf("alice CreateClaim: %v", err)
	}
	as(t, "bob")
	if _, err := CreateClaim(root, "src/main.go", "fix"); !errors.Is(err, ErrClaimed) {
		t.Fatalf("bob CreateClaim: %v; want ErrClaimed", err)
	}
	if owner, _ := ClaimOwner(root, "src/main.go"); owner != "alice" {
		t.Fatalf("ClaimOwner = %q", owner)
	}

	// Broadcasts.
	as(t, "alice")
	b1, err := CreateBroadcast(root, "general", "refactoring src/main.go")
	if err != nil || b1.Channel != "general" || b1.Agent != "alice" || b1.Timestamp.IsZero() {
		t.Fatalf("CreateBroadcast: %+v, %v", b1, err)
	}
	as(t, "bob")
	if _, err := CreateBroadcast(root, "general", "ok, I'll wait"); err != nil {
		t.Fatal(err)
	}
	for _, since := range []time.Duration{0, time.Hour} {
		list, err := ListBroadcasts(root, "general", since)
		if err != nil || len(list) != 2 || list[0].Agent != "alice" || list[1].Message != "ok, I'll wait" {
			t.Fatalf("ListBroadcasts(since %v) = %+v, %v", since, list, err)
		}
	}

	// Handoff from alice to bob, with the claim released for him.
	as(t, "alice")
	h, err := CreateHandoff(root, "bob", "src/main.go", "refactor done, please wire the flags")
	if err != nil || h.From != "alice" || h.To != "bob" || h.ID == "" || h.Status != HandoffPending {
		t.Fatalf("CreateHandoff: %+v, %v", h, err)
	}
	if err := ReleaseClaim(root, "src/main.go"); err != nil {
		t.Fatal(err)
	}
	if err := AcceptHandoff(root, h.ID); !errors.Is(err, ErrNotRecipient) {
		t.Fatalf("alice accepts bob's handoff: %v; want ErrNotRecipient", err)
	}
	if list, err := ListHandoffs(root, "bob"); err != nil || len(list) != 1 || list[0].ID != h.ID {
		t.Fatalf("ListHandoffs(bob) as alice: %+v, %v", list, err)
	}
	as(t, "bob")
	pending, err := ListHandoffs(root, "")
	if err != nil || len(pending) != 1 || pending[0].Artifact != "src/main.go" {
		t.Fatalf("bob ListHandoffs: %+v, %v", pending, err)
	}
	if err := AcceptHandoff(root, pending[0].ID); err != nil {
		t.Fatalf("AcceptHandoff: %v", err)
	}
	if err := AcceptHandoff(root, pending[0].ID); err != nil {
		t.Fatalf("AcceptHandoff twice: %v", err)
	}
	if list, err := ListHandoffs(root, ""); err != nil || len(list) != 0 {
		t.Fatalf("pending after accept: %+v, %v", list, err)
	}
	if err := AcceptHandoff(root, "1763630400-alice-bob.json"); !errors.Is(err, ErrHandoffNotFound) {
		t.Fatalf("AcceptHandoff of a seed file name that is not there: %v; want ErrHandoffNotFound", err)
	}
	if _, err := CreateClaim(root, "src/main.go", "wiring flags"); err != nil {
		t.Fatalf("bob claims the handed-over file: %v", err)
	}

	// Checkpoint both reach; the waiter wakes on the last arrival.
	as(t, "alice")
	if id, err := CreateCheckpoint(root, "phase-1"); err != nil || id != "alice" {
		t.Fatalf("CreateCheckpoint = %q, %v", id, err)
	}
	if err := WaitCheckpoint(root, "phase-1", []string{"alice", "bob"}, 0); !errors.Is(err, ErrTimeout) {
		t.Fatalf("WaitCheckpoint with timeout 0 before bob: %v; want ErrTimeout", err)
	}
	waited := make(chan error, 1)
	woke := make(chan time.Time, 1)
	go func() {
		err := WaitCheckpoint(root, "phase-1", []string{"alice", "bob"}, 20*time.Second)
		woke <- time.Now()
		waited <- err
	}()
	select {
	case err := <-waited:
		t.Fatalf("WaitCheckpoint returned before bob arrived: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	as(t, "bob")
	arrivedAt := time.Now()
	if id, err := CreateCheckpoint(root, "phase-1"); err != nil || id != "bob" {
		t.Fatalf("bob CreateCheckpoint = %q, %v", id, err)
	}
	if err := <-waited; err != nil {
		t.Fatalf("WaitCheckpoint: %v", err)
	}
	d := (<-woke).Sub(arrivedAt)
	if d > time.Second {
		t.Fatalf("waiter woke %v after the last arrival; want well under the seed's 2s poll", d)
	}
	t.Logf("checkpoint waiter woke %v after the last arrival (including bob's CreateCheckpoint call)", d)
	if err := WaitCheckpoint(root, "phase-1", []string{"alice", "bob"}, 0); err != nil {
		t.Fatalf("WaitCheckpoint with timeout 0 after both: %v", err)
	}

	// A timeout names who is missing.
	if _, err := CreateCheckpoint(root, "phase-2"); err != nil {
		t.Fatal(err)
	}
	err = WaitCheckpoint(root, "phase-2", []string{"alice", "bob"}, 300*time.Millisecond)
	var te *CheckpointTimeoutError
	if !errors.As(err, &te) || !errors.Is(err, ErrTimeout) || len(te.Missing) != 1 || te.Missing[0] != "alice" {
		t.Fatalf("WaitCheckpoint timeout: %v; want CheckpointTimeoutError missing alice", err)
	}

	// Everything above happened in the workspace's namespace only.
	if list, err := ListClaims(root); err != nil || len(list) != 1 || list[0].Agent != "bob" {
		t.Fatalf("ListClaims: %+v, %v", list, err)
	}
}

// TestSeedJSONFields: the types keep the seed's JSON field names, and seed
// JSON decodes into them.
func TestSeedJSONFields(t *testing.T) {
	ts := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	cases := []struct {
		v    any
		seed string
		keys []string
	}{
		{&Claim{}, `{"path":"a","agent":"x","reason":"r","claimed_at":"2026-11-20T09:00:00Z"}`, []string{"path", "agent", "reason", "claimed_at"}},
		{&Broadcast{}, `{"channel":"c","agent":"x","message":"m","timestamp":"2026-11-20T09:00:00Z"}`, []string{"channel", "agent", "message", "timestamp"}},
		{&Handoff{}, `{"from":"x","to":"y","artifact":"a","message":"m","timestamp":"2026-11-20T09:00:00Z"}`, []string{"from", "to", "artifact", "message", "timestamp"}},
	}
	for _, tc := range cases {
		if err := json.Unmarshal([]byte(tc.seed), tc.v); err != nil {
			t.Fatalf("decoding seed JSON into %T: %v", tc.v, err)
		}
		b, err := json.Marshal(tc.v)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		for _, k := range tc.keys {
			if _, ok := m[k]; !ok {
				t.Errorf("%T JSON lacks the seed's field %q: %s", tc.v, k, b)
			}
		}
	}
	if c := cases[0].v.(*Claim); c.Path != "a" || !c.ClaimedAt.Equal(ts) {
		t.Fatalf("decoded claim = %+v", c)
	}
}

// TestSeedImportAndAcceptByFile: Import with the default client, then the
// recipient accepts an imported handoff by its seed file name.
func TestSeedImportAndAcceptByFile(t *testing.T) {
	seedEnv(t, "unused")
	root := copyFixture(t)
	t.Setenv("COG_NAMESPACE", "fixture")
	r, err := Import(testCtx(t, 20*time.Second), nil, root)
	if err != nil || len(r.Imported) == 0 {
		t.Fatalf("Import with the default client: %v, %v", r, err)
	}
	as(t, "bob")
	if list, err := ListHandoffs(root, ""); err != nil || len(list) != 1 {
		t.Fatalf("bob's imported handoffs: %+v, %v", list, err)
	}
	if err := AcceptHandoff(root, "1763630400-alice-bob.json"); err != nil {
		t.Fatalf("AcceptHandoff by seed file name: %v", err)
	}
	if list, err := ListHandoffs(root, ""); err != nil || len(list) != 0 {
		t.Fatalf("after accept: %+v, %v", list, err)
	}
	if err := AcceptHandoff(root, "../claims/src_main.go.claim"); !errors.Is(err, ErrHandoffNotFound) {
		t.Fatalf("AcceptHandoff of a path: %v; want ErrHandoffNotFound", err)
	}
	if owner, err := ClaimOwner(root, "src/main.go"); err != nil || owner != "alice" {
		t.Fatalf("imported claim seen by ClaimOwner: %q, %v", owner, err)
	}
	if list, err := ListBroadcasts(root, "general", 0); err != nil || len(list) != 3 {
		t.Fatalf("imported broadcasts seen by ListBroadcasts: %d, %v", len(list), err)
	}
	if err := WaitCheckpoint(root, "phase-1", []string{"alice", "bob", "carol"}, time.Second); err != nil {
		t.Fatalf("imported checkpoint seen by WaitCheckpoint: %v", err)
	}
}

// BenchmarkSeedClaimRelease measures a CreateClaim + ReleaseClaim pair
// through the package-level functions (namespace resolution from the
// workspace on every call included), against BenchmarkClientClaimRelease,
// the same pair on a Client.
func BenchmarkSeedClaimRelease(b *testing.B) {
	srv := testenv.Start(b)
	b.Setenv("COG_NATS_URL", srv.URL())
	b.Setenv("COG_NAMESPACE", "")
	b.Setenv("COG_AGENT_ID", "bench")
	b.Setenv("COG_CLAIM_TTL", "")
	root := filepath.Join(b.TempDir(), "ws")
	if err := os.MkdirAll(filepath.Join(root, ".git"), 0o755); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, ".git", "config"), []byte(gitConfig("git@github.com:o/r.git")), 0o644); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { CloseDefaultClients() })
	for b.Loop() {
		if _, err := CreateClaim(root, "src/a.go", "bench"); err != nil {
			b.Fatal(err)
		}
		if err := ReleaseClaim(root, "src/a.go"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkClientClaimRelease(b *testing.B) {
	srv := testenv.Start(b)
	c := newClient(b, srv, "bench")
	ctx := context.Background()
	for b.Loop() {
		cl, err := c.TryAcquire(ctx, "src/a.go", WithReason("bench"))
		if err != nil {
			b.Fatal(err)
		}
		if err := c.Release(ctx, cl); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkNamespace(b *testing.B) {
	b.Setenv("COG_NAMESPACE", "")
	root := filepath.Join(b.TempDir(), "ws")
	if err := os.MkdirAll(filepath.Join(root, ".git"), 0o755); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, ".git", "config"), []byte(gitConfig("git@github.com:o/r.git")), 0o644); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := Namespace(root); err != nil {
			b.Fatal(err)
		}
	}
}

// TestSeedNoJetStream: a server without JetStream is "unavailable" too, with
// the same hint.
func TestSeedNoJetStream(t *testing.T) {
	srv := testenv.Start(t, testenv.WithOptions(func(o *server.Options) { o.JetStream = false }))
	t.Setenv("COG_NATS_URL", srv.URL())
	t.Setenv("COG_NAMESPACE", "nojs")
	t.Cleanup(func() { CloseDefaultClients() })
	start := time.Now()
	_, err := CreateClaim(t.TempDir(), "a", "r")
	if !errors.Is(err, ErrUnavailable) || strings.Count(err.Error(), "coord-agent serve") != 1 {
		t.Fatalf("CreateClaim on a server without JetStream: %v; want ErrUnavailable with the hint once", err)
	}
	t.Logf("after %v: %v", time.Since(start), err)
}
