package main_test

import (
	"strings"
	"testing"

	"github.com/cogos-dev/coord/coord"
	"github.com/cogos-dev/coord/internal/sidecar"
)

// TestBadInput: usage errors exit 2 with usage on stderr and write
// nothing, whether or not a sidecar runs.
func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	serve(t, dir)
	cases := [][]string{
		{"frobnicate"},
		{},
		{"claim"},
		{"claim", "a", "b"},
		{"claim", "../outside"},
		{"claim", "/etc/passwd"},
		{"claim", ""},
		{"claim", "x", "--ttl", "soon"},
		{"claim", "x", "--ttl", "-5s"},
		{"claim", "x", "--ttl", "48h"},
		{"claim", "x", "--timeout", "1s"}, // --timeout without --wait
		{"claim", "x", "--wait", "--timeout", "xyz"},
		{"claim", "x", "--bogus-flag"},
		{"release"},
		{"release", "a/../../b"},
		{"owner"},
		{"broadcast", "chan"},
		{"broadcast", "bad channel", "msg"},
		{"broadcasts"},
		{"broadcasts", "chan", "--since", "yesterday"},
		{"handoff", "bob", "artifact"},
		{"handoff", "bob", "artifact", "msg", "--claims", "../x"},
		{"handoff", "bad agent", "artifact", "msg"},
		{"accept"},
		{"checkpoint"},
		{"wait", "cp"},
		{"wait", "cp", "--agents", "a", "--count", "2"},
		{"wait", "cp", "--count", "-1"},
		{"wait", "cp", "--agents", "a", "--timeout", "0s"},
		{"import"},
		{"import", "/no/such/dir"},
		{"import", dir}, // no .cog in it
		{"--agent"},
		{"--agent", "has space", "claims"},
	}
	for _, args := range cases {
		r := cli(t, dir, "alice", args...)
		if r.code != 2 {
			t.Errorf("coord-agent %q: want exit 2, got %v", args, r)
			continue
		}
		if !strings.Contains(r.stderr, "usage: coord-agent") {
			t.Errorf("coord-agent %q: no usage on stderr:\n%s", args, r.stderr)
		}
		if r.stdout != "" {
			t.Errorf("coord-agent %q: wrote to stdout: %q", args, r.stdout)
		}
	}
	// serve's own usage errors.
	for _, args := range [][]string{{"serve", "--port", "abc"}, {"serve", "extra"}, {"serve", "--ttl", "soon"}} {
		if r := cli(t, dir, "alice", args...); r.code != 2 || !strings.Contains(r.stderr, "usage: coord-agent serve") {
			t.Errorf("coord-agent %q: want exit 2 with usage, got %v", args, r)
		}
	}

	// Nothing was written: no claims, no broadcasts, no handoffs, no arrivals.
	var claims []coord.Claim
	mustJSON(t, dir, "alice", &claims, "claims")
	if len(claims) != 0 {
		t.Errorf("bad input left claims: %+v", claims)
	}
	var st sidecar.Status
	mustJSON(t, dir, "bob", &st, "status")
	for _, s := range st.Stores {
		if s.Messages != 0 {
			t.Errorf("bad input left %d messages in %s", s.Messages, s.Name)
		}
	}

	// Without any server: still exit 2, before trying to connect.
	none := t.TempDir()
	if r := cli(t, none, "alice", "claim", "../x", "--nats", "nats://127.0.0.1:1"); r.code != 2 {
		t.Errorf("bad path with no server: want exit 2, got %v", r)
	}
	// A good command with no server: exit 1 with a hint, not a hang.
	if r := cli(t, none, "alice", "claims", "--nats", "nats://127.0.0.1:1"); r.code != 1 || !strings.Contains(r.stderr, "coord-agent serve") {
		t.Errorf("no server: want exit 1 suggesting serve, got %v", r)
	}
}
