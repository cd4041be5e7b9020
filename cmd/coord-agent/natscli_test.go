package main_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/cogos-dev/coord/subjects"
)

// natsCLI finds the stock `nats` CLI, or skips (fails when
// COORD_REQUIRE_NATS_CLI=1, as in CI).
func natsCLI(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("nats")
	if err != nil {
		if home, herr := os.UserHomeDir(); herr == nil {
			if p, lerr := exec.LookPath(home + "/go/bin/nats"); lerr == nil {
				path, err = p, nil
			}
		}
	}
	if err != nil {
		if os.Getenv("COORD_REQUIRE_NATS_CLI") == "1" {
			t.Fatalf("COORD_REQUIRE_NATS_CLI=1 but no nats CLI on PATH: go install github.com/nats-io/natscli/nats@v0.5.0")
		}
		t.Skip("no nats CLI on PATH (go install github.com/nats-io/natscli/nats@v0.5.0)")
	}
	return path
}

// TestNATSCLI inspects a running sidecar's buckets and streams with the
// stock nats CLI, by the names docs/cli.md documents.
func TestNATSCLI(t *testing.T) {
	natsBin := natsCLI(t)
	dir := t.TempDir()
	p := serve(t, dir)
	must(t, dir, "alice", "claim", "src/main.go", "--reason", "refactor")
	must(t, dir, "alice", "broadcast", "build", "green")
	must(t, dir, "alice", "handoff", "bob", "report.pdf", "read this")
	must(t, dir, "alice", "checkpoint", "release-1")

	home := t.TempDir() // no nats contexts from the user's config
	nats := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(natsBin, append([]string{"--server", p.info.NATSURL}, args...)...)
		cmd.Env = append(baseEnv(t), "HOME="+home, "XDG_CONFIG_HOME="+home)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("nats %v: %v\n%s", args, err, out)
		}
		return string(out)
	}

	// Claims: bucket coord-claims, key <namespace>.<path tokens>.
	key, _, err := subjects.ClaimKey("default", "src/main.go")
	if err != nil {
		t.Fatal(err)
	}
	if key != "default.src.main=2Ego" {
		t.Fatalf("documented key of src/main.go is default.src.main=2Ego, subjects says %s", key)
	}
	if out := nats("kv", "ls"); !strings.Contains(out, "coord-claims") || !strings.Contains(out, "coord-checkpoints") {
		t.Errorf("nats kv ls:\n%s", out)
	}
	if out := nats("kv", "ls", "coord-claims"); !strings.Contains(out, "default.src.main=2Ego") {
		t.Errorf("nats kv ls coord-claims:\n%s", out)
	}
	var claim map[string]any
	raw := nats("kv", "get", "coord-claims", "default.src.main=2Ego", "--raw")
	if err := json.Unmarshal([]byte(raw), &claim); err != nil {
		t.Fatalf("nats kv get --raw: %v\n%s", err, raw)
	}
	if claim["agent"] != "alice" || claim["path"] != "src/main.go" || claim["reason"] != "refactor" {
		t.Errorf("claim value: %v", claim)
	}

	// Checkpoints: bucket coord-checkpoints, key <namespace>.<name>.<agent>.
	if out := nats("kv", "ls", "coord-checkpoints"); !strings.Contains(out, "default.release-1.alice") {
		t.Errorf("nats kv ls coord-checkpoints:\n%s", out)
	}

	// Broadcasts: stream COORD_BROADCASTS, subject coord.bcast.<namespace>.<channel>.
	var info struct {
		Config struct {
			Subjects []string `json:"subjects"`
		} `json:"config"`
		State struct {
			Messages uint64 `json:"messages"`
		} `json:"state"`
	}
	if err := json.Unmarshal([]byte(nats("stream", "info", "COORD_BROADCASTS", "--json")), &info); err != nil {
		t.Fatal(err)
	}
	if info.State.Messages != 1 || len(info.Config.Subjects) != 1 || info.Config.Subjects[0] != "coord.bcast.>" {
		t.Errorf("stream info COORD_BROADCASTS: %+v", info)
	}
	if out := nats("stream", "get", "COORD_BROADCASTS", "--last-for", "coord.bcast.default.build"); !strings.Contains(out, `"message":"green"`) {
		t.Errorf("nats stream get --last-for coord.bcast.default.build:\n%s", out)
	}

	// Handoffs: stream COORD_HANDOFFS, subject coord.handoff.<namespace>.<recipient>.<id>.
	if out := nats("stream", "subjects", "COORD_HANDOFFS"); !strings.Contains(out, "coord.handoff.default.bob.") {
		t.Errorf("nats stream subjects COORD_HANDOFFS:\n%s", out)
	}
}
