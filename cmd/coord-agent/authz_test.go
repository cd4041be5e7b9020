package main_test

import (
	"strings"
	"testing"
)

// TestAuthzSubcommand: `coord-agent authz` prints a nats.conf block (exit
// 0) and refuses a call without agents (exit 2); the credential flags are
// checked before anything connects (exit 2 on a bad combination).
func TestAuthzSubcommand(t *testing.T) {
	dir := t.TempDir()
	r := must(t, dir, "", "authz", "--namespace", "repo", "alice", "bob")
	if !strings.Contains(r.stdout, "authorization") || !strings.Contains(r.stdout, "alice") || !strings.Contains(r.stdout, "bob") {
		t.Errorf("authz block: %v", r)
	}
	if r := cli(t, dir, "", "authz"); r.code != 2 {
		t.Errorf("authz without agents: %v, want exit 2", r)
	}
	if r := cli(t, dir, "", "authz", "--no-such-flag", "alice"); r.code != 2 {
		t.Errorf("authz with an unknown flag: %v, want exit 2", r)
	}
	if r := cli(t, dir, "", "help"); !strings.Contains(r.stdout, "authz") || !strings.Contains(r.stdout, "--creds") {
		t.Errorf("usage does not list authz and the credential flags: %v", r)
	}
	// --user without --password: refused before connecting.
	r = cli(t, dir, "alice", "claims", "--nats", "nats://127.0.0.1:1", "--user", "alice")
	if r.code != 2 || !strings.Contains(r.stderr, "password") {
		t.Errorf("claims --user without --password: %v, want exit 2 naming the password", r)
	}
	// Given before the subcommand, too.
	r = cli(t, dir, "alice", "--token", "t", "--user", "u", "--password", "p", "claims", "--nats", "nats://127.0.0.1:1")
	if r.code != 2 || !strings.Contains(r.stderr, "credentials") {
		t.Errorf("two ways of logging in: %v, want exit 2", r)
	}
}
