package main_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/cogos-dev/coord/coord"
	"github.com/cogos-dev/coord/internal/httpx"
	"github.com/cogos-dev/coord/internal/sidecar"
)

// TestE2ECLIFlow drives the binary as a user would: one sidecar, two
// agents competing, waiting, broadcasting, handing off, meeting at a
// checkpoint.
func TestE2ECLIFlow(t *testing.T) {
	dir := t.TempDir()
	serve(t, dir)

	// Two agents compete for a path: the second is refused, naming the first.
	r := must(t, dir, "alice", "claim", "src/main.go", "--reason", "refactor")
	if !strings.Contains(r.stdout, "kept alive by the sidecar") {
		t.Errorf("claim through the sidecar should say so: %v", r)
	}
	r = cli(t, dir, "bob", "claim", "src/main.go")
	if r.code != 1 || !strings.Contains(r.stderr, "claimed by alice") || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
		t.Fatalf("bob's claim: want exit 1 with one line naming alice, got %v", r)
	}
	if r := must(t, dir, "bob", "owner", "src/main.go"); strings.TrimSpace(r.stdout) != "alice" {
		t.Errorf("owner: got %q, want alice", r.stdout)
	}
	// bob cannot release alice's claim.
	if r := cli(t, dir, "bob", "release", "src/main.go"); r.code != 1 || !strings.Contains(r.stderr, "alice") {
		t.Errorf("bob releasing alice's claim: want exit 1 naming alice, got %v", r)
	}

	// The claim outlives the CLI process: the sidecar holds it.
	var claims []coord.Claim
	mustJSON(t, dir, "", &claims, "claims")
	if len(claims) != 1 || claims[0].Agent != "alice" || claims[0].Path != "src/main.go" || claims[0].Reason != "refactor" {
		t.Fatalf("claims: got %+v", claims)
	}

	// bob waits; alice's release hands the claim to him.
	waited := make(chan result, 1)
	go func() { waited <- cli(t, dir, "bob", "claim", "src/main.go", "--wait", "--timeout", "30s") }()
	// Let bob queue (his wait is visible as the waiters flag; a short pause
	// suffices: if he is not queued yet he simply claims a free path).
	time.Sleep(500 * time.Millisecond)
	must(t, dir, "alice", "release", "src/main.go")
	select {
	case r := <-waited:
		if r.code != 0 || !strings.Contains(r.stdout, "claimed src/main.go for bob") {
			t.Fatalf("bob's --wait claim: %v", r)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("bob's claim --wait was not unblocked by alice's release")
	}
	if r := must(t, dir, "", "owner", "src/main.go"); strings.TrimSpace(r.stdout) != "bob" {
		t.Errorf("owner after the wait: got %q, want bob", r.stdout)
	}
	// A wait that times out exits 1.
	r = cli(t, dir, "alice", "claim", "src/main.go", "--wait", "--timeout", "1s")
	if r.code != 1 || !strings.Contains(r.stderr, "timed out") || !strings.Contains(r.stderr, "still claimed by bob") {
		t.Errorf("alice's --wait --timeout 1s on bob's claim: %v", r)
	}

	// Broadcast and list.
	must(t, dir, "alice", "broadcast", "build", "tests are green")
	must(t, dir, "bob", "broadcast", "build", "deploying")
	var msgs []coord.Broadcast
	mustJSON(t, dir, "", &msgs, "broadcasts", "build")
	if len(msgs) != 2 || msgs[0].Agent != "alice" || msgs[0].Message != "tests are green" || msgs[1].Agent != "bob" || msgs[0].Seq >= msgs[1].Seq {
		t.Fatalf("broadcasts: got %+v", msgs)
	}
	if r := must(t, dir, "", "broadcasts", "build", "--since", "1h"); !strings.Contains(r.stdout, "deploying") {
		t.Errorf("broadcasts table: %v", r)
	}

	// Handoff alice -> bob, listed for bob, accepted, then gone from the list.
	must(t, dir, "alice", "claim", "docs/guide.md")
	var h coord.Handoff
	mustJSON(t, dir, "alice", &h, "handoff", "bob", "docs/guide.md", "please finish the guide", "--claims", "docs/guide.md")
	if h.ID == "" || h.To != "bob" || h.From != "alice" || h.Status != coord.HandoffPending {
		t.Fatalf("handoff: got %+v", h)
	}
	var pending []coord.Handoff
	mustJSON(t, dir, "bob", &pending, "handoffs")
	if len(pending) != 1 || pending[0].ID != h.ID || pending[0].Message != "please finish the guide" {
		t.Fatalf("bob's handoffs: got %+v", pending)
	}
	if r := must(t, dir, "alice", "handoffs", "--agent", "bob"); !strings.Contains(r.stdout, h.ID) {
		t.Errorf("handoffs --agent bob: %v", r)
	}
	if r := cli(t, dir, "carol", "accept", h.ID); r.code != 1 {
		t.Errorf("carol accepting bob's handoff: want exit 1, got %v", r)
	}
	r = must(t, dir, "bob", "accept", h.ID)
	if !strings.Contains(r.stdout, "accepted "+h.ID) || !strings.Contains(r.stdout, "docs/guide.md") {
		t.Errorf("accept: %v", r)
	}
	if r := must(t, dir, "", "owner", "docs/guide.md"); strings.TrimSpace(r.stdout) != "bob" {
		t.Errorf("the handoff's claim should be bob's now, owner says %q", r.stdout)
	}
	mustJSON(t, dir, "bob", &pending, "handoffs")
	if len(pending) != 0 {
		t.Errorf("handoffs after accept: got %+v", pending)
	}

	// Checkpoint + wait: a timeout names who is missing.
	must(t, dir, "alice", "checkpoint", "tests-done")
	r = cli(t, dir, "alice", "wait", "tests-done", "--agents", "alice,bob", "--timeout", "1s")
	if r.code != 1 || !strings.Contains(r.stderr, "missing: bob") {
		t.Fatalf("wait with bob missing: want exit 1 naming bob, got %v", r)
	}
	waitDone := make(chan result, 1)
	go func() {
		waitDone <- cli(t, dir, "alice", "wait", "tests-done", "--agents", "alice,bob", "--timeout", "30s")
	}()
	must(t, dir, "bob", "checkpoint", "tests-done")
	if r := <-waitDone; r.code != 0 || !strings.Contains(r.stdout, "alice, bob") {
		t.Errorf("wait after bob arrived: %v", r)
	}
	var cp sidecar.CheckpointResponse
	mustJSON(t, dir, "carol", &cp, "wait", "tests-done", "--count", "2", "--timeout", "5s")
	if len(cp.Arrived) != 2 {
		t.Errorf("wait --count 2: got %+v", cp)
	}

	// Status shows the server, the stores, bob's claims.
	var st sidecar.Status
	mustJSON(t, dir, "bob", &st, "status")
	if st.Agent != "bob" || !st.Server.JetStream || st.Sidecar == nil || st.Sidecar.Mode != "embedded" {
		t.Errorf("status: %+v", st)
	}
	stores := map[string]bool{}
	for _, s := range st.Stores {
		stores[s.Name] = true
	}
	for _, want := range []string{"coord-claims", "coord-checkpoints", "COORD_BROADCASTS", "COORD_HANDOFFS"} {
		if !stores[want] {
			t.Errorf("status: store %s missing from %+v", want, st.Stores)
		}
	}
	if len(st.Claims) != 2 {
		t.Errorf("status: bob should hold 2 claims, got %+v", st.Claims)
	}
	if r := must(t, dir, "bob", "status"); !strings.Contains(r.stdout, "coord-claims") || !strings.Contains(r.stdout, "docs/guide.md") {
		t.Errorf("status table: %v", r)
	}
}

// TestE2EFollow: broadcasts --follow prints messages published after it
// started, through the sidecar's streaming API.
func TestE2EFollow(t *testing.T) {
	dir := t.TempDir()
	serve(t, dir)
	must(t, dir, "alice", "broadcast", "news", "old")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	follow := startCLI(t, ctx, dir, "bob", "broadcasts", "news", "--follow", "--since", "1h", "--json")
	follow.waitFor(t, `"message":"old"`)
	must(t, dir, "alice", "broadcast", "news", "fresh")
	follow.waitFor(t, `"message":"fresh"`)
	if n := strings.Count(follow.out.String(), `"message":"old"`); n != 1 {
		t.Errorf("old message printed %d times, want once:\n%s", n, follow.out.String())
	}
}

// TestE2EGracefulShutdown: SIGTERM releases the sidecar's claims at once
// (not after their TTL) and exits 0.
func TestE2EGracefulShutdown(t *testing.T) {
	dir := t.TempDir()
	p := serve(t, dir)
	must(t, dir, "alice", "claim", "a.txt", "--ttl", "1h")
	if code := p.stop(); code != 0 {
		t.Fatalf("serve exit code after SIGTERM: %d, want 0\n%s", code, p.output())
	}
	if !strings.Contains(p.output(), "released on shutdown") {
		t.Errorf("no release logged:\n%s", p.output())
	}
	serve(t, dir)
	if r := cli(t, dir, "bob", "owner", "a.txt"); r.code != 1 || !strings.Contains(r.stderr, "not claimed") {
		t.Fatalf("after a clean shutdown the 1h claim should be gone: %v", r)
	}
}

// TestE2EKill9 kills sidecars with SIGKILL: a sidecar joined to another's
// server loses its claims within their TTL; an embedded server restarted
// on the same data dir still has the pending handoffs, and its expired
// claims are gone.
func TestE2EKill9(t *testing.T) {
	dirA, dirB := t.TempDir(), t.TempDir()
	a := serve(t, dirA)
	b := serve(t, dirB, "--nats", a.info.NATSURL)
	if b.info.Mode != "joined" {
		t.Fatalf("sidecar B mode %q, want joined", b.info.Mode)
	}
	must(t, dirB, "bob", "claim", "shared/lock", "--ttl", "2s")
	must(t, dirA, "alice", "claim", "mine", "--ttl", "2s")
	must(t, dirA, "alice", "handoff", "bob", "report.pdf", "read this")
	// The claims outlive their 2s TTL while the sidecars renew them.
	time.Sleep(3 * time.Second)
	if r := must(t, dirA, "", "owner", "shared/lock"); strings.TrimSpace(r.stdout) != "bob" {
		t.Fatalf("bob's claim should be kept alive past its TTL, owner: %v", r)
	}

	b.kill9()
	took := eventually(t, 10*time.Second, "bob's claim expiring after kill -9", func() bool {
		return cli(t, dirA, "", "owner", "shared/lock").code == 1
	})
	t.Logf("claim gone %v after SIGKILL (TTL 2s)", took)
	if took > 5*time.Second {
		t.Errorf("claim with a 2s TTL took %v to expire", took)
	}

	a.kill9()
	time.Sleep(2500 * time.Millisecond) // past the 2s TTL of alice's claim
	serve(t, dirA)
	var pending []coord.Handoff
	mustJSON(t, dirA, "bob", &pending, "handoffs")
	if len(pending) != 1 || pending[0].Artifact != "report.pdf" || pending[0].From != "alice" {
		t.Fatalf("after kill -9 and restart, bob's handoff should still be pending: %+v", pending)
	}
	eventually(t, 5*time.Second, "alice's claim gone after restart", func() bool {
		return cli(t, dirA, "", "owner", "mine").code == 1
	})
}

// TestE2EDirect: with no sidecar the CLI claims directly and says the
// claim is not kept alive; it expires after its TTL, not at exit.
func TestE2EDirect(t *testing.T) {
	dir := t.TempDir()
	p := serve(t, dir)
	empty := t.TempDir() // no sidecar.json here
	r := cli(t, empty, "alice", "claim", "x", "--ttl", "2s", "--nats", p.info.NATSURL)
	if r.code != 0 || !strings.Contains(r.stderr, "not kept alive") {
		t.Fatalf("direct claim: %v", r)
	}
	if r := must(t, dir, "", "owner", "x"); strings.TrimSpace(r.stdout) != "alice" {
		t.Fatalf("the direct claim should outlive the CLI process: %v", r)
	}
	eventually(t, 10*time.Second, "direct claim expiring", func() bool {
		return cli(t, dir, "", "owner", "x").code == 1
	})

	// Every other subcommand works directly too (--nats bypasses the sidecar).
	n := []string{"--nats", p.info.NATSURL}
	direct := func(agent string, args ...string) result {
		t.Helper()
		return must(t, empty, agent, append(args, n...)...)
	}
	direct("alice", "broadcast", "ch", "one")
	var msgs []coord.Broadcast
	mustJSON(t, empty, "", &msgs, append([]string{"broadcasts", "ch"}, n...)...)
	if len(msgs) != 1 || msgs[0].Message != "one" {
		t.Errorf("direct broadcasts: %+v", msgs)
	}
	direct("alice", "claim", "y", "--ttl", "30s")
	direct("alice", "handoff", "bob", "y", "take it", "--claims", "y")
	var pending []coord.Handoff
	mustJSON(t, empty, "bob", &pending, append([]string{"handoffs"}, n...)...)
	if len(pending) != 1 {
		t.Fatalf("direct handoffs: %+v", pending)
	}
	if r := direct("bob", "accept", pending[0].ID); !strings.Contains(r.stdout, "not kept alive") {
		t.Errorf("direct accept should say the claims are not kept alive: %v", r)
	}
	direct("alice", "checkpoint", "cp")
	if r := cli(t, empty, "bob", append([]string{"wait", "cp", "--agents", "alice,bob", "--timeout", "1s"}, n...)...); r.code != 1 || !strings.Contains(r.stderr, "missing: bob") {
		t.Errorf("direct wait with bob missing: %v", r)
	}
	direct("bob", "checkpoint", "cp")
	direct("bob", "wait", "cp", "--count", "2", "--timeout", "5s")
	var st sidecar.Status
	mustJSON(t, empty, "bob", &st, append([]string{"status"}, n...)...)
	if st.Sidecar != nil || st.Agent != "bob" || len(st.Claims) != 1 || st.Claims[0].Path != "y" {
		t.Errorf("direct status: %+v", st)
	}
	// A direct follow prints what is published after it started.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f := startCLI(t, ctx, empty, "carol", append([]string{"broadcasts", "ch", "--follow"}, n...)...)
	eventually(t, 20*time.Second, "a broadcast reaching the direct follow", func() bool {
		direct("alice", "broadcast", "ch", "live")
		return strings.Contains(f.out.String(), "alice: live")
	})
}

// TestE2EUnixSocket: the API on a Unix socket, found through sidecar.json
// or given with --sidecar unix:/path.
func TestE2EUnixSocket(t *testing.T) {
	dir := t.TempDir()
	sock := dir + "/api.sock"
	p := serveNoWait(t, dir, "--http", "unix:"+sock)
	eventually(t, 20*time.Second, "sidecar.json naming the socket", func() bool {
		in, err := sidecar.ReadInfo(dir)
		return err == nil && in.HTTP == "unix:"+sock
	})
	r := must(t, dir, "alice", "claim", "sock/file")
	if !strings.Contains(r.stdout, "kept alive by the sidecar at unix:"+sock) {
		t.Errorf("claim through the socket: %v", r)
	}
	// bob does not share the data dir: without the token he is refused,
	// with $COG_SIDECAR_TOKEN he gets through.
	if r := cli(t, t.TempDir(), "bob", "owner", "sock/file", "--sidecar", "unix:"+sock); r.code == 0 || !strings.Contains(r.stderr, "token") {
		t.Errorf("owner with --sidecar and no token: %v, want a failure naming the token", r)
	}
	tok, err := httpx.ReadTokenFile(sidecar.TokenFile(dir))
	if err != nil {
		t.Fatal(err)
	}
	r = cliEnv(t, context.Background(), []string{"COG_SIDECAR_TOKEN=" + tok}, t.TempDir(), "bob", "owner", "sock/file", "--sidecar", "unix:"+sock)
	if r.code != 0 || strings.TrimSpace(r.stdout) != "alice" {
		t.Errorf("owner with --sidecar unix: and $COG_SIDECAR_TOKEN: %v", r)
	}
	if code := p.stop(); code != 0 {
		t.Errorf("stop: exit %d", code)
	}
}
