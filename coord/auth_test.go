package coord

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/cogos-dev/coord/internal/authz"
	"github.com/cogos-dev/coord/subjects"
	"github.com/cogos-dev/coord/testenv"
)

// authEnv is a server that enforces the permissions internal/authz
// generates: the rendered authorization block is loaded as a nats.conf
// would be, so the tests run against exactly what operators deploy.
type authEnv struct {
	srv   *testenv.Server
	conf  string
	admin authz.User
	users map[string]authz.User // by agent
}

func startAuth(t *testing.T, extra []testenv.Option, agents ...string) *authEnv {
	t.Helper()
	return startAuthWith(t, extra, authz.Options{}, agents...)
}

func startAuthWith(t *testing.T, extra []testenv.Option, opts authz.Options, agents ...string) *authEnv {
	t.Helper()
	admin, err := authz.Admin("admin")
	if err != nil {
		t.Fatal(err)
	}
	e := &authEnv{admin: admin, users: make(map[string]authz.User)}
	all := []authz.User{admin}
	for _, a := range agents {
		u, err := authz.Agent("test", a, opts)
		if err != nil {
			t.Fatal(err)
		}
		e.users[a] = u
		all = append(all, u)
	}
	if e.conf, err = authz.Render(all); err != nil {
		t.Fatal(err)
	}
	e.srv = testenv.Start(t, append([]testenv.Option{testenv.WithAuthorization(t, e.conf)}, extra...)...)
	// The administrator provisions buckets and streams: agents may not.
	adm := e.client(t, "admin", WithUserPassword(admin.Name, admin.Password))
	if err := adm.Provision(testCtx(t, 5*time.Second)); err != nil {
		t.Fatalf("provisioning: %v", err)
	}
	return e
}

// agent connects as agent with its generated user.
func (e *authEnv) agent(t *testing.T, agent string) *Client {
	t.Helper()
	u := e.users[agent]
	return e.client(t, agent, WithUserPassword(u.Name, u.Password))
}

func (e *authEnv) client(t *testing.T, agent string, opts ...Option) *Client {
	t.Helper()
	return newClient(t, e.srv, agent, opts...)
}

func TestAuthRefusesMissingOrWrongCredentials(t *testing.T) {
	e := startAuth(t, nil, "alice", "bob")
	ctx := testCtx(t, 10*time.Second)
	alice, bob := e.users["alice"], e.users["bob"]
	cases := []struct {
		name string
		opts []Option
	}{
		{"no credentials", nil},
		{"wrong password", []Option{WithUserPassword("alice", "not-the-password")}},
		{"another user's password", []Option{WithUserPassword("alice", bob.Password)}},
		{"unknown user", []Option{WithUserPassword("mallory", alice.Password)}},
		{"token", []Option{WithToken(alice.Password)}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			opts := append([]Option{WithURL(e.srv.URL()), WithAgent("alice"), WithNamespace("test")}, tc.opts...)
			c, err := New(ctx, opts...)
			if err == nil {
				c.Close()
				t.Fatal("connected, want refused")
			}
			if !errors.Is(err, ErrUnavailable) || !errors.Is(err, nats.ErrAuthorization) {
				t.Fatalf("New: %v, want ErrUnavailable wrapping nats.ErrAuthorization", err)
			}
		})
	}
	c := e.agent(t, "alice")
	if _, err := c.TryAcquire(ctx, "src/ok.go"); err != nil {
		t.Fatalf("alice with her credentials: %v", err)
	}
}

func TestAuthNKeyLogin(t *testing.T) {
	good, err := authz.AgentNKey("test", "alice", authz.Options{})
	if err != nil {
		t.Fatal(err)
	}
	stranger, err := authz.AgentNKey("test", "alice", authz.Options{}) // not in the config
	if err != nil {
		t.Fatal(err)
	}
	admin, _ := authz.Admin("admin")
	conf, err := authz.Render([]authz.User{admin, good})
	if err != nil {
		t.Fatal(err)
	}
	srv := testenv.Start(t, testenv.WithAuthorization(t, conf))
	newClient(t, srv, "admin", WithUserPassword(admin.Name, admin.Password)) // provisions claims
	dir := t.TempDir()
	seedFile := func(name, seed string) string {
		f := filepath.Join(dir, name)
		if err := os.WriteFile(f, []byte(seed), 0o600); err != nil {
			t.Fatal(err)
		}
		return f
	}
	ctx := testCtx(t, 10*time.Second)
	c := newClient(t, srv, "alice", WithNKey(seedFile("good.nk", good.Seed)))
	if _, err := c.TryAcquire(ctx, "src/nk.go"); err != nil {
		t.Fatalf("nkey user: %v", err)
	}
	_, err = New(ctx, WithURL(srv.URL()), WithAgent("alice"), WithNamespace("test"), WithNKey(seedFile("stranger.nk", stranger.Seed)))
	if !errors.Is(err, nats.ErrAuthorization) {
		t.Fatalf("unknown nkey: %v, want nats.ErrAuthorization", err)
	}
}

func TestAuthTLS(t *testing.T) {
	ca := testenv.NewCA(t)
	e := startAuthTLS(t, ca)
	ctx := testCtx(t, 10*time.Second)
	cert, key := ca.Issue(t, "alice", false)
	u := e.users["alice"]
	c := e.client(t, "alice", WithUserPassword(u.Name, u.Password), WithTLS(cert, key, ca.CAFile))
	if _, err := c.TryAcquire(ctx, "src/tls.go"); err != nil {
		t.Fatalf("over TLS: %v", err)
	}
	other := testenv.NewCA(t)
	strangerCert, strangerKey := other.Issue(t, "alice", false)
	for name, opt := range map[string]Option{
		"no client certificate":        WithTLS("", "", ca.CAFile),
		"certificate of another CA":    WithTLS(strangerCert, strangerKey, ca.CAFile),
		"server not trusted by client": WithTLS(cert, key, other.CAFile),
	} {
		_, err := New(ctx, WithURL(e.srv.URL()), WithAgent("alice"), WithNamespace("test"),
			WithUserPassword(u.Name, u.Password), opt, WithNATSOptions(nats.MaxReconnects(0)))
		if !errors.Is(err, ErrUnavailable) {
			t.Errorf("%s: %v, want refused (ErrUnavailable)", name, err)
		}
	}
	if _, err := New(ctx, WithURL(e.srv.URL()), WithAgent("alice"), WithNamespace("test"),
		WithUserPassword(u.Name, u.Password), WithNATSOptions(nats.MaxReconnects(0))); !errors.Is(err, ErrUnavailable) {
		t.Errorf("plain connection to a TLS server: %v, want refused", err)
	}
}

func startAuthTLS(t *testing.T, ca *testenv.CA) *authEnv {
	t.Helper()
	adminCert, adminKey := ca.Issue(t, "admin", false)
	e := &authEnv{users: make(map[string]authz.User)}
	var err error
	if e.admin, err = authz.Admin("admin"); err != nil {
		t.Fatal(err)
	}
	u, err := authz.Agent("test", "alice", authz.Options{})
	if err != nil {
		t.Fatal(err)
	}
	e.users["alice"] = u
	if e.conf, err = authz.Render([]authz.User{e.admin, u}); err != nil {
		t.Fatal(err)
	}
	e.srv = testenv.Start(t, testenv.WithAuthorization(t, e.conf), testenv.WithTLS(t, ca, true))
	newClient(t, e.srv, "admin", WithUserPassword(e.admin.Name, e.admin.Password), WithTLS(adminCert, adminKey, ca.CAFile))
	return e
}

// rawAgent is a bare connection with an agent's credentials and inbox
// prefix that records the server's permission violations.
type rawAgent struct {
	nc   *nats.Conn
	mu   sync.Mutex
	errs []error
}

func (e *authEnv) raw(t *testing.T, agent string) *rawAgent {
	t.Helper()
	u := e.users[agent]
	prefix, err := subjects.InboxPrefix("test", agent)
	if err != nil {
		t.Fatal(err)
	}
	r := &rawAgent{}
	r.nc = e.srv.Connect(t, nats.UserInfo(u.Name, u.Password), nats.CustomInboxPrefix(prefix),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			r.mu.Lock()
			r.errs = append(r.errs, err)
			r.mu.Unlock()
		}))
	return r
}

// denied reports whether the server refused subj (publish or subscribe)
// on this connection; the flush's pong comes after the server's -ERR.
func (r *rawAgent) denied(t *testing.T, subj string) bool {
	t.Helper()
	if err := r.nc.FlushTimeout(5 * time.Second); err != nil {
		t.Fatalf("flush: %v", err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		r.mu.Lock()
		for _, err := range r.errs {
			if errors.Is(err, nats.ErrPermissionViolation) && strings.Contains(err.Error(), `"`+subj+`"`) {
				r.mu.Unlock()
				return true
			}
		}
		r.mu.Unlock()
		time.Sleep(5 * time.Millisecond) // the error handler runs on its own goroutine
	}
	return false
}

func TestAuthHandoffIsolation(t *testing.T) {
	e := startAuth(t, nil, "alice", "bob", "carol")
	ctx := testCtx(t, 20*time.Second)
	alice, bob, carol := e.agent(t, "alice"), e.agent(t, "bob"), e.agent(t, "carol")

	sent, err := alice.Handoff(ctx, "bob", "src/parser/", "yours")
	if err != nil {
		t.Fatalf("alice sends to bob: %v", err)
	}
	if _, err := carol.Handoff(ctx, "bob", "docs/", "and this"); err != nil {
		t.Fatalf("carol sends to bob: %v", err)
	}

	// Carol, through coord: refused by the server, at once (not a timeout).
	start := time.Now()
	if _, err := carol.Handoffs(ctx, "bob"); !errors.Is(err, ErrPermissionDenied) {
		t.Errorf("carol lists bob's handoffs: %v, want ErrPermissionDenied", err)
	}
	if _, err := carol.HandoffArchive(ctx, "bob"); !errors.Is(err, ErrPermissionDenied) {
		t.Errorf("carol lists bob's archive: %v, want ErrPermissionDenied", err)
	}
	for name, decide := range map[string]func() (Handoff, error){
		"accept": func() (Handoff, error) { return carol.Accept(ctx, sent.ID) },
		"reject": func() (Handoff, error) { return carol.Reject(ctx, sent.ID, "mine") },
	} {
		if _, err := decide(); !errors.Is(err, ErrHandoffNotFound) || !errors.Is(err, ErrPermissionDenied) {
			t.Errorf("carol %ss bob's handoff: %v, want ErrHandoffNotFound and ErrPermissionDenied", name, err)
		}
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("refusals took %v: they should not wait for a timeout", d)
	}

	// Carol, by hand: every way at bob's handoffs is a permission violation
	// from the server.
	r := e.raw(t, "carol")
	bobList, _ := subjects.HandoffListConsumer("test", "bob", false, 0)
	carolList, _ := subjects.HandoffListConsumer("test", "carol", false, 0)
	st := subjects.HandoffStream
	bobPending := "coord.handoff.test.bob." + sent.ID
	pubs := []string{
		"$JS.API.CONSUMER.CREATE." + st + "." + bobList + ".coord.handoff.test.bob.*",   // bob's consumer
		"$JS.API.CONSUMER.CREATE." + st + "." + carolList + ".coord.handoff.test.bob.*", // her name, his filter
		"$JS.API.CONSUMER.CREATE." + st + "." + carolList + ".coord.handoff.test.>",     // a wider filter
		"$JS.API.CONSUMER.CREATE." + st,                                                 // filter in the body
		"$JS.API.CONSUMER.CREATE." + st + ".sneaky",                                     // filter in the body
		"$JS.API.CONSUMER.DURABLE.CREATE." + st + ".sneaky",
		"$JS.API.CONSUMER.MSG.NEXT." + st + "." + bobList, // fetch from bob's consumer
		"$JS.API.CONSUMER.INFO." + st + "." + bobList,     // read bob's consumer
		"$JS.API.CONSUMER.DELETE." + st + "." + bobList,
		"$JS.API.CONSUMER.LIST." + st,
		"$JS.API.CONSUMER.NAMES." + st,
		"$JS.ACK." + st + "." + bobList + ".1.1.1.0.0", // ack bob's delivery
		"$JS.API.DIRECT.GET." + st + "." + bobPending,  // read bob's handoff
		"$JS.API.DIRECT.GET." + st,                     // filter in the body
		"$JS.API.STREAM.MSG.GET." + st,
		"$JS.API.STREAM.MSG.DELETE." + st,
		"$JS.API.STREAM.PURGE." + st,
		"$JS.API.STREAM.UPDATE." + st,
		"$JS.API.STREAM.DELETE." + st,
		"coord.handoff-done.test.bob." + sent.ID, // decide for bob
	}
	for _, s := range pubs {
		if err := r.nc.PublishRequest(s, r.nc.NewRespInbox(), []byte(`{"filter":"coord.handoff.test.bob.*","seq":1}`)); err != nil {
			t.Fatalf("publish %s: %v", s, err)
		}
		if !r.denied(t, s) {
			t.Errorf("carol may publish on %s", s)
		}
	}
	for _, s := range []string{"coord.handoff.test.bob.>", "coord.>", ">", "_INBOX.>", "_INBOX_.test.bob.>", "$JS.ACK.>"} {
		if _, err := r.nc.SubscribeSync(s); err != nil {
			t.Fatalf("subscribe %s: %v", s, err)
		}
		if !r.denied(t, s) {
			t.Errorf("carol may subscribe to %s", s)
		}
	}

	// Bob, under the same generated permissions, lists and decides his own.
	got, err := bob.Handoffs(ctx, "")
	if err != nil || len(got) != 2 || got[0].ID != sent.ID {
		t.Fatalf("bob's pending: %+v, %v; want alice's then carol's", got, err)
	}
	if _, err := bob.Accept(ctx, sent.ID); err != nil {
		t.Fatalf("bob accepts: %v", err)
	}
	if _, err := bob.Reject(ctx, got[1].ID, "not mine"); err != nil {
		t.Fatalf("bob rejects: %v", err)
	}
	if again, err := bob.Accept(ctx, sent.ID); err != nil || again.Status != HandoffAccepted {
		t.Fatalf("bob accepts again: %+v, %v", again, err)
	}
	if got, err := bob.Handoffs(ctx, ""); err != nil || len(got) != 0 {
		t.Fatalf("bob's pending after deciding: %+v, %v", got, err)
	}
	if arch, err := bob.HandoffArchive(ctx, ""); err != nil || len(arch) != 2 {
		t.Fatalf("bob's archive: %+v, %v", arch, err)
	}
	if _, err := bob.Accept(ctx, "00000000-0000-4000-8000-000000000000"); !errors.Is(err, ErrHandoffNotFound) {
		t.Fatalf("bob accepts an unknown ID: %v", err)
	}
}

func TestAuthClaimHandOverAndHandoff(t *testing.T) {
	e := startAuth(t, nil, "alice", "bob", "carol")
	ctx := testCtx(t, 20*time.Second)
	alice, bob, carol := e.agent(t, "alice"), e.agent(t, "bob"), e.agent(t, "carol")

	held, err := alice.TryAcquire(ctx, "src/lock.go")
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		cl  *Claim
		err error
	}
	got := make(chan result, 1)
	go func() {
		cl, err := bob.Acquire(ctx, "src/lock.go")
		got <- result{cl, err}
	}()
	// Bob is queued once his waiter key exists.
	waitFor(t, 5*time.Second, func() bool {
		waits, err := alice.waiters.List(ctx, ">")
		return err == nil && len(waits) > 1 // bob's session and his wait
	})
	if _, err := carol.TryAcquire(ctx, "src/lock.go"); !errors.Is(err, ErrClaimed) {
		t.Fatalf("carol: %v, want ErrClaimed", err)
	}
	if err := alice.Release(ctx, held); err != nil {
		t.Fatalf("alice releases to the waiter: %v", err)
	}
	var res result
	select {
	case res = <-got:
	case <-ctx.Done():
		t.Fatal("bob never got the claim")
	}
	if res.err != nil || res.cl.Agent != "bob" || res.cl.Token <= held.Token {
		t.Fatalf("bob's Acquire: %+v, %v (alice's token %d)", res.cl, res.err, held.Token)
	}

	// A claim travels with a handoff under the same permissions.
	h, err := bob.Handoff(ctx, "carol", "src/lock.go", "over to you", WithClaims("src/lock.go"))
	if err != nil {
		t.Fatal(err)
	}
	acc, err := carol.Accept(ctx, h.ID)
	if err != nil || len(acc.NotTransferred) != 0 {
		t.Fatalf("carol accepts: %+v, %v", acc, err)
	}
	if owner, err := alice.Owner(ctx, "src/lock.go"); err != nil || owner != "carol" {
		t.Fatalf("owner after the handoff: %q, %v", owner, err)
	}
}

func TestAuthCheckpointAndBroadcastSubjects(t *testing.T) {
	e := startAuth(t, nil, "alice", "bob")
	r := e.raw(t, "alice")
	allowed := []string{
		"$KV.coord-checkpoints.test.ready.alice",
		"coord.bcast.test.ops",
		"coord.handoff.test.bob.00000000-0000-4000-8000-000000000000",
		"$KV.coord-claims.test.src.x",
	}
	denied := []string{
		"$KV.coord-checkpoints.test.ready.bob",    // another agent's arrival
		"$KV.coord-checkpoints.other.ready.alice", // another namespace
		"$KV.coord-claims.other.src.x",
		"coord.bcast.other.ops",
		"$JS.API.STREAM.CREATE.COORD_EVIL",
		"coord.evil",
	}
	for _, s := range append(allowed, denied...) {
		if err := r.nc.Publish(s, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	// Errors arrive in order: once the denied ones are in, any refusal of
	// an allowed subject (published before them) would be in too.
	for _, s := range denied {
		if !r.denied(t, s) {
			t.Errorf("alice may publish on %s", s)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range allowed {
		for _, err := range r.errs {
			if strings.Contains(err.Error(), `"`+s+`"`) {
				t.Errorf("alice may not publish on %s: %v", s, err)
			}
		}
	}
}

// waitFor polls cond (tests only) until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in time")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

var _ = context.Background

func TestAuthBroadcastsAndCheckpoints(t *testing.T) {
	e := startAuthWith(t, nil, authz.Options{Channels: []string{"ops"}}, "alice", "bob")
	ctx := testCtx(t, 20*time.Second)
	alice, bob := e.agent(t, "alice"), e.agent(t, "bob")

	sub, err := bob.Subscribe(ctx, "ops")
	if err != nil {
		t.Fatalf("bob subscribes: %v", err)
	}
	defer sub.Stop()
	if _, err := alice.Publish(ctx, "ops", "deploying"); err != nil {
		t.Fatalf("alice publishes on an allowed channel: %v", err)
	}
	select {
	case b := <-sub.C():
		if b.Message != "deploying" || b.Agent != "alice" {
			t.Fatalf("bob got %+v", b)
		}
	case <-ctx.Done():
		t.Fatalf("bob's subscription got nothing: %v", sub.Err())
	}
	if got, err := bob.Broadcasts(ctx, "ops", 0); err != nil || len(got) != 1 {
		t.Fatalf("bob lists ops: %+v, %v", got, err)
	}
	// Refused by the server, and told at once (not at the deadline).
	start := time.Now()
	if _, err := alice.Publish(ctx, "random", "x"); !errors.Is(err, ErrPermissionDenied) {
		t.Fatalf("alice published on a channel she may not: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("refused publish took %v", d)
	}

	for _, c := range []*Client{alice, bob} {
		if err := c.Arrive(ctx, "ready"); err != nil {
			t.Fatalf("%s arrives: %v", c.Agent(), err)
		}
	}
	if err := alice.WaitCheckpoint(ctx, "ready", []string{"alice", "bob"}); err != nil {
		t.Fatalf("wait: %v", err)
	}
	start = time.Now()
	if err := alice.ResetCheckpoint(ctx, "ready"); !errors.Is(err, ErrPermissionDenied) {
		t.Fatalf("alice reset bob's arrival without the permission to: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("refused reset took %v", d)
	}
	if got, err := bob.Arrivals(ctx, "ready"); err != nil || len(got) != 1 || got[0] != "bob" {
		// Alice's own arrival may be gone (she may delete it); bob's stays.
		if len(got) != 2 {
			t.Fatalf("arrivals after a refused reset: %v, %v", got, err)
		}
	}
}

func TestAuthResetCheckpointsOption(t *testing.T) {
	e := startAuthWith(t, nil, authz.Options{ResetCheckpoints: true}, "alice", "bob")
	ctx := testCtx(t, 10*time.Second)
	alice, bob := e.agent(t, "alice"), e.agent(t, "bob")
	if err := bob.Arrive(ctx, "ready"); err != nil {
		t.Fatal(err)
	}
	if err := alice.ResetCheckpoint(ctx, "ready"); err != nil {
		t.Fatalf("reset with the permission: %v", err)
	}
	if got, err := alice.Arrivals(ctx, "ready"); err != nil || len(got) != 0 {
		t.Fatalf("arrivals after reset: %v, %v", got, err)
	}
}

// A sidecar serves several agents over one connection: its user holds the
// union of their permissions (authz.Union, `coord-agent authz --union`),
// and still none of anyone else's.
func TestAuthSidecarUnionUser(t *testing.T) {
	admin, _ := authz.Admin("admin")
	var sets []*server.Permissions
	for _, a := range []string{"node1", "alice", "bob"} {
		p, err := authz.Permissions("test", a, authz.Options{})
		if err != nil {
			t.Fatal(err)
		}
		sets = append(sets, p)
	}
	node, _ := authz.Agent("test", "node1", authz.Options{})
	node.Permissions = authz.Union(sets...)
	carolUser, _ := authz.Agent("test", "carol", authz.Options{})
	conf, err := authz.Render([]authz.User{admin, node, carolUser})
	if err != nil {
		t.Fatal(err)
	}
	srv := testenv.Start(t, testenv.WithAuthorization(t, conf))
	ctx := testCtx(t, 20*time.Second)
	adm := newClient(t, srv, "admin", WithUserPassword(admin.Name, admin.Password))
	if err := adm.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	prefix, _ := subjects.InboxPrefix("test", "node1")
	nc := srv.Connect(t, nats.UserInfo(node.Name, node.Password), nats.CustomInboxPrefix(prefix))
	alice := newClient(t, srv, "alice", WithConn(nc))
	bob := newClient(t, srv, "bob", WithConn(nc))
	carol := newClient(t, srv, "carol", WithUserPassword(carolUser.Name, carolUser.Password))
	for _, to := range []string{"alice", "bob"} {
		if _, err := carol.Handoff(ctx, to, "x", ""); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []*Client{alice, bob} {
		got, err := c.Handoffs(ctx, "")
		if err != nil || len(got) != 1 {
			t.Fatalf("%s through the sidecar's connection: %+v, %v", c.Agent(), got, err)
		}
		if _, err := c.Accept(ctx, got[0].ID); err != nil {
			t.Fatalf("%s accepts: %v", c.Agent(), err)
		}
	}
	if _, err := alice.Handoffs(ctx, "carol"); !errors.Is(err, ErrPermissionDenied) {
		t.Fatalf("the sidecar's user lists carol's handoffs: %v", err)
	}
}

// A write outside the user's permissions fails at once with
// ErrPermissionDenied (the server's refusal is routed to the waiting
// call), not when its deadline passes.
func TestAuthRefusedWriteFailsFast(t *testing.T) {
	e := startAuth(t, nil, "alice")
	adm := e.client(t, "admin", WithUserPassword(e.admin.Name, e.admin.Password), WithNamespace("other"))
	if err := adm.Provision(testCtx(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	u := e.users["alice"]
	// alice's user is for namespace "test"; this client speaks for "other"
	// (with the inbox prefix of "test", so that it can connect at all).
	c := e.client(t, "alice", WithUserPassword(u.Name, u.Password), WithNamespace("other"),
		WithNATSOptions(nats.CustomInboxPrefix("_INBOX_.test.alice")))
	ctx := testCtx(t, 10*time.Second)
	start := time.Now()
	if _, err := c.Handoff(ctx, "bob", "x", ""); !errors.Is(err, ErrPermissionDenied) {
		t.Fatalf("handoff in a namespace the user may not write: %v, want ErrPermissionDenied", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("refusal took %v", d)
	}
}
