package main_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/cogos-dev/coord/coord"
)

// TestServeConfig: `serve --config nats.conf` starts with the shipped
// file (single node; store and port overridden for the test), and agents
// work under its permissions, through the sidecar and directly.
func TestServeConfig(t *testing.T) {
	conf, err := filepath.Abs("../../nats.conf")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	p := serve(t, dir, "--config", conf)
	if p.info.Mode != "config" {
		t.Fatalf("mode %q, want config", p.info.Mode)
	}
	must(t, dir, "alice", "claim", "src/main.go")
	must(t, dir, "alice", "broadcast", "build", "ok")
	must(t, dir, "alice", "handoff", "bob", "src/main.go", "yours", "--claims", "src/main.go")
	var pending []coord.Handoff
	mustJSON(t, dir, "bob", &pending, "handoffs")
	if len(pending) != 1 {
		t.Fatalf("handoffs: %+v", pending)
	}
	must(t, dir, "bob", "accept", pending[0].ID)
	must(t, dir, "bob", "checkpoint", "cp")
	must(t, dir, "alice", "wait", "cp", "--agents", "bob", "--timeout", "5s")

	// Directly, as the no-credentials user "agent".
	none := t.TempDir()
	r := must(t, none, "carol", "claims", "--nats", p.info.NATSURL)
	if !strings.Contains(r.stdout, "bob") {
		t.Errorf("direct claims under the agent user: %v", r)
	}
	must(t, none, "carol", "claim", "direct/claim", "--ttl", "1s", "--nats", p.info.NATSURL)
	// The agent user may not write outside coord's names.
	if r := cli(t, none, "carol", "claim", "x", "--nats", strings.Replace(p.info.NATSURL, "nats://", "nats://nobody:wrong@", 1)); r.code != 1 {
		t.Errorf("wrong credentials: want exit 1, got %v", r)
	}
}
