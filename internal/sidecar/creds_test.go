package sidecar

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/rs/zerolog"

	"github.com/cogos-dev/coord/coord"
	"github.com/cogos-dev/coord/internal/authz"
	"github.com/cogos-dev/coord/testenv"
)

// TestJoinWithUnionUser: a sidecar joins a server enforcing coord's
// permissions with Config.Credentials as the "union" user of
// `coord-agent authz --union node1 alice bob`: its connection's replies
// arrive under node1's inbox prefix, so it can act for alice and bob.
// Without credentials it cannot start.
func TestJoinWithUnionUser(t *testing.T) {
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
	conf, err := authz.Render([]authz.User{admin, node})
	if err != nil {
		t.Fatal(err)
	}
	srv := testenv.Start(t, testenv.WithAuthorization(t, conf))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	adm, err := coord.New(ctx, coord.WithURL(srv.URL()), coord.WithAgent("admin"), coord.WithNamespace("test"),
		coord.WithUserPassword(admin.Name, admin.Password))
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	if err := adm.Provision(ctx); err != nil {
		t.Fatal(err)
	}

	if s, err := Start(ctx, Config{NATSURL: srv.URL(), Agent: "node1", Namespace: "test", DataDir: t.TempDir(),
		HTTPAddr: "127.0.0.1:0", Log: zerolog.New(zerolog.NewTestWriter(t)), StartTimeout: time.Second}); err == nil {
		s.Shutdown(ctx)
		t.Fatal("a sidecar without credentials joined a server that requires them")
	}
	s := start(t, Config{NATSURL: srv.URL(), Agent: "node1", Namespace: "test",
		Credentials: coord.Credentials{User: node.Name, Password: node.Password}})
	for _, agent := range []string{"alice", "bob"} {
		if code, body := post(t, s, "/v1/claims", agent, ClaimRequest{Path: "src/" + agent}); code != http.StatusOK {
			t.Fatalf("claim as %s through the union user: %d %s", agent, code, body)
		}
	}
	if code, body := post(t, s, "/v1/handoffs", "alice", HandoffRequest{To: "bob", Artifact: "x"}); code != http.StatusOK {
		t.Fatalf("handoff alice -> bob: %d %s", code, body)
	}
	req, _ := http.NewRequest("GET", s.Info().HTTP+"/v1/handoffs", nil)
	req.Header.Set(HeaderAgent, "bob")
	req.Header.Set("Authorization", "Bearer "+s.Token())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("bob's handoffs through the union user: %d", resp.StatusCode)
	}
	if held := s.agents.held(); len(held) != 2 {
		t.Fatalf("held %+v, want alice's and bob's claims", held)
	}
}
