package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cogos-dev/coord/coord"
	"github.com/cogos-dev/coord/internal/sidecar"
)

func TestLeadingGlobals(t *testing.T) {
	cases := []struct {
		in        []string
		pre, rest string
		err       bool
	}{
		{[]string{"claim", "x"}, "", "claim x", false},
		{[]string{"--agent", "a", "claim", "x"}, "--agent a", "claim x", false},
		{[]string{"--json", "--nats=u", "claims"}, "--json --nats=u", "claims", false},
		{[]string{"--agent"}, "", "", true},
		{[]string{"--reason", "r", "claim"}, "", "", true},
	}
	for _, c := range cases {
		pre, rest, err := leadingGlobals(c.in)
		if (err != nil) != c.err {
			t.Errorf("%q: err %v", c.in, err)
			continue
		}
		if !c.err && (strings.Join(pre, " ") != c.pre || strings.Join(rest, " ") != c.rest) {
			t.Errorf("%q: got %q %q, want %q %q", c.in, pre, rest, c.pre, c.rest)
		}
	}
}

func TestParseInterspersed(t *testing.T) {
	g := globals{}
	c := newCommand("claim", "PATH", "", &g)
	reason := c.fs.String("reason", "", "")
	if err := c.parse([]string{"--json", "src/x", "--reason", "why", "--agent", "a"}, 1, 1); err != nil {
		t.Fatal(err)
	}
	if c.pos[0] != "src/x" || *reason != "why" || g.agent != "a" || !g.json {
		t.Errorf("got pos %q reason %q agent %q json %v", c.pos, *reason, g.agent, g.json)
	}
	c = newCommand("broadcast", "CHANNEL MESSAGE", "", &g)
	if err := c.parse([]string{"ch", "--", "--not-a-flag"}, 2, 2); err != nil || c.pos[1] != "--not-a-flag" {
		t.Errorf("after --: %q %v", c.pos, err)
	}
	for _, args := range [][]string{{}, {"a", "b"}, {"--nope", "x"}} {
		c = newCommand("owner", "PATH", "", &g)
		var ue *usageError
		if err := c.parse(args, 1, 1); !errors.As(err, &ue) {
			t.Errorf("%q: want a usage error, got %v", args, err)
		}
	}
}

func TestDurationFlag(t *testing.T) {
	for _, s := range []string{"soon", "0s", "-1s", ""} {
		var d durationFlag
		if err := d.Set(s); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
	var d durationFlag
	if err := d.Set("90s"); err != nil || d.d.Seconds() != 90 || !d.set {
		t.Errorf("90s: %v %v", d, err)
	}
}

func TestResolvePath(t *testing.T) {
	ws := t.TempDir()
	e := &env{g: globals{workspace: ws}}
	if p, err := e.resolvePath(ws + "/src/a.go"); err != nil || p != "src/a.go" {
		t.Errorf("inside: %q %v", p, err)
	}
	if p, err := e.resolvePath("./src//b.go"); err != nil || p != "src/b.go" {
		t.Errorf("relative: %q %v", p, err)
	}
	for _, bad := range []string{"/elsewhere/x", "../x", "", ws} {
		var ue *usageError
		if _, err := e.resolvePath(bad); !errors.As(err, &ue) {
			t.Errorf("%q: want a usage error, got %v", bad, err)
		}
	}
	e = &env{}
	if _, err := e.resolvePath("/abs"); err == nil {
		t.Error("absolute path without a workspace accepted")
	}
}

func TestExitCode(t *testing.T) {
	cases := []struct {
		err  error
		want int
	}{
		{nil, 0},
		{usagef("x"), 2},
		{fmt.Errorf("w: %w", coord.ErrInvalidPath), 2},
		{&apiError{status: 400, body: sidecar.ErrorBody{Code: sidecar.CodeInvalid}}, 2},
		{&apiError{status: 409, body: sidecar.ErrorBody{Code: sidecar.CodeClaimed}}, 1},
		{&coord.ClaimedError{}, 1},
		{coord.ErrTimeout, 1},
		{coord.ErrUnavailable, 1},
	}
	for _, c := range cases {
		if got := exitCode(c.err); got != c.want {
			t.Errorf("exitCode(%v) = %d, want %d", c.err, got, c.want)
		}
	}
}

func TestRunUsage(t *testing.T) {
	var out, errb bytes.Buffer
	if code := Run(context.Background(), []string{"help"}, &out, &errb); code != 0 || !strings.Contains(out.String(), "handoffs") {
		t.Errorf("help: %d %q", code, out.String())
	}
	out.Reset()
	if code := Run(context.Background(), []string{"help", "wait"}, &out, &errb); code != 0 || !strings.Contains(out.String(), "-count") {
		t.Errorf("help wait: %d %q", code, out.String())
	}
	errb.Reset()
	if code := Run(context.Background(), []string{"nope"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), `unknown subcommand "nope"`) {
		t.Errorf("unknown: %d %q", code, errb.String())
	}
}

func TestShort(t *testing.T) {
	for d, want := range map[time.Duration]string{
		42 * time.Second:               "42s",
		3*time.Minute + 12*time.Second: "3m12s",
		5*time.Hour + 3*time.Minute:    "5h3m",
		165*time.Hour + 39*time.Minute: "6d21h",
		2*time.Hour + 20*time.Second:   "2h0m",
	} {
		if got := short(d); got != want {
			t.Errorf("short(%v) = %q, want %q", d, got, want)
		}
	}
}
