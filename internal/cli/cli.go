package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"sort"
	"strings"

	"github.com/cogos-dev/coord/internal/authz"
	"github.com/cogos-dev/coord/subjects"
)

// env is one run of the CLI.
type env struct {
	ctx            context.Context
	stdout, stderr io.Writer
	g              globals
	// ns is the namespace from --workspace / $COG_NAMESPACE ("" = the
	// sidecar's, or coord's default).
	ns string
	// cmd is the subcommand being run, for its usage on a usage error.
	cmd *command
}

// command makes the flag set of subcommand name (with the global flags).
func (e *env) command(name string) *command {
	sc := commands[name]
	e.cmd = newCommand(name, sc.args, sc.short, &e.g)
	return e.cmd
}

// subcommand is one entry of the command table.
type subcommand struct {
	args, short string
	run         func(e *env, args []string) error
}

var commands map[string]subcommand

func init() {
	commands = map[string]subcommand{
		"claim":   {"PATH [--reason TEXT] [--ttl DURATION] [--wait] [--timeout DURATION]", "Claim PATH for this agent (exit 1 naming the owner if another agent holds it).", runClaim},
		"release": {"PATH", "Release this agent's claim on PATH (a free path is not an error).", runRelease},
		"owner":   {"PATH", "Print the agent holding PATH (exit 1 if nobody does).", runOwner},
		"claims":  {"", "List every claim of the namespace.", runClaims},
		"status":  {"", "Show the server, cluster, buckets and streams, this agent's claims and pending handoffs.", runStatus},
	}
	for n, sc := range map[string]subcommand{
		"broadcast":  {"CHANNEL MESSAGE", "Publish MESSAGE on CHANNEL (stored before it returns).", runBroadcast},
		"broadcasts": {"CHANNEL [--since DURATION] [--follow]", "List CHANNEL's messages, oldest first; --follow keeps printing new ones.", runBroadcasts},
		"handoff":    {"TO ARTIFACT MESSAGE [--claims PATH,PATH]", "Hand ARTIFACT to agent TO (pending until TO accepts), with the claims on --claims.", runHandoff},
		"handoffs":   {"[--agent ID]", "List the pending handoffs of this agent (or --agent ID).", runHandoffs},
		"accept":     {"HANDOFF_ID", "Accept a handoff addressed to this agent (and become holder of its claims).", runAccept},
		"checkpoint": {"NAME", "Record that this agent reached checkpoint NAME.", runCheckpoint},
		"import":     {"WORKSPACE_ROOT [--claim-ttl DURATION]", "Import the file-based state under WORKSPACE_ROOT/.cog (claims, handoffs, broadcasts, checkpoints) into its namespace; running it again changes nothing.", runImport},
		"wait":       {"NAME (--agents A,B,C | --count N) [--timeout DURATION]", "Wait until the agents (or any N) reached NAME; exit 1 naming who is missing on timeout.", runWait},
	} {
		commands[n] = sc
	}
}

// Run runs the CLI subcommand in args (os.Args[1:] without "serve") and
// returns the process exit code.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	pre, args, err := leadingGlobals(args)
	if err != nil {
		fmt.Fprintf(stderr, "coord-agent: %v\n\n", err)
		Usage(stderr)
		return 2
	}
	if len(args) == 0 {
		Usage(stderr)
		return 2
	}
	name := args[0]
	if name == "authz" {
		return runAuthz(args[1:], stdout, stderr)
	}
	if name == "help" || name == "-h" || name == "--help" || name == "-help" {
		if len(args) > 1 {
			if _, ok := commands[args[1]]; ok {
				run := &env{stdout: stdout, stderr: stderr}
				commands[args[1]].run(run, []string{"-h"})
				run.cmd.usage(stdout)
				return 0
			}
		}
		Usage(stdout)
		return 0
	}
	sc, ok := commands[name]
	if !ok {
		fmt.Fprintf(stderr, "coord-agent: unknown subcommand %q\n\n", name)
		Usage(stderr)
		return 2
	}
	e := &env{ctx: ctx, stdout: stdout, stderr: stderr, g: envGlobals()}
	err = sc.run(e, append(args[1:], pre...))
	if errors.Is(err, flag.ErrHelp) {
		e.cmd.usage(stdout)
		return 0
	}
	code := exitCode(err)
	switch code {
	case 0:
	case 2:
		fmt.Fprintf(stderr, "coord-agent: %s\n\n", oneLine(err))
		if e.cmd != nil {
			e.cmd.usage(stderr)
		}
	default:
		fmt.Fprintf(stderr, "coord-agent: %s\n", oneLine(err))
	}
	return code
}

// leadingGlobals splits the global flags given before the subcommand
// from the rest; they are parsed with the subcommand's own flags.
func leadingGlobals(args []string) (pre, rest []string, err error) {
	valued := map[string]bool{"agent": true, "nats": true, "workspace": true, "sidecar": true, "data": true,
		"creds": true, "nkey": true, "user": true, "password": true, "token": true, "tlscert": true, "tlskey": true, "tlsca": true}
	for len(args) > 0 && strings.HasPrefix(args[0], "-") && args[0] != "-" {
		a := args[0]
		name := strings.TrimLeft(a, "-")
		if a == "-h" || a == "--help" || a == "-help" {
			return pre, args, nil
		}
		if i := strings.IndexByte(name, '='); i >= 0 {
			name = name[:i]
			if !valued[name] && name != "json" {
				return nil, nil, fmt.Errorf("unknown flag %s before the subcommand", a)
			}
			pre, args = append(pre, a), args[1:]
			continue
		}
		switch {
		case name == "json":
			pre, args = append(pre, a), args[1:]
		case valued[name]:
			if len(args) < 2 {
				return nil, nil, fmt.Errorf("flag %s needs a value", a)
			}
			pre, args = append(pre, a, args[1]), args[2:]
		default:
			return nil, nil, fmt.Errorf("unknown flag %s before the subcommand", a)
		}
	}
	return pre, args, nil
}

// Usage writes the list of subcommands.
func Usage(w io.Writer) {
	fmt.Fprint(w, `usage: coord-agent SUBCOMMAND [ARGS] [FLAGS]

  serve [--data DIR] [--port N] [--http ADDR] [--nats URL | --config FILE] [--ttl D]
        run the sidecar (an embedded NATS server unless --nats or --config)
  bench [--small] [--nats URL] [--run SCENARIOS] [--json]
        scenario benchmarks beside their raw JetStream floors (bench --help)
  authz [--namespace NS] [--union NAME] [--out-dir DIR] [--nkeys] AGENT...
        print a nats.conf authorization block giving each agent coord's permissions
`)
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %s %s\n        %s\n", n, commands[n].args, commands[n].short)
	}
	fmt.Fprint(w, `
global flags (before or after the subcommand):
  --agent ID        agent ID (default $COG_AGENT_ID, else $USER)
  --nats URL        NATS URL (default $COG_NATS_URL, $NATS_URL; bypasses the sidecar)
  --workspace DIR   workspace root: the namespace, and the root of absolute paths
  --sidecar ADDR    sidecar HTTP address (default $COG_SIDECAR, else from the data dir)
  --data DIR        data dir of the sidecar (default $COG_DATA_DIR, ~/.local/share/coord)
  --json            print JSON instead of tables
  --creds FILE, --nkey FILE, --user U --password P, --token T, --tlscert/--tlskey/--tlsca FILE
                    NATS login of a direct connection (default $NATS_CREDS, $NATS_NKEY, $NATS_USER, ...)

The sidecar's HTTP API needs its token: read from DATA_DIR/token, or $COG_SIDECAR_TOKEN.

exit codes: 0 success, 1 refused/timed out/failed (one line on stderr), 2 usage error
`)
}

// parse parses a subcommand's arguments and resolves the namespace. It
// runs before anything is sent, so a usage error writes nothing.
func (e *env) parse(c *command, args []string, min, max int) error {
	if err := c.parse(args, min, max); err != nil {
		return err
	}
	if e.g.agent != "" {
		if err := subjects.ValidateAgent(e.g.agent); err != nil {
			return usagef("--agent: %v", err)
		}
	}
	ns, err := namespaceFor(e.g.workspace)
	if err != nil {
		return usagef("--workspace: %v", err)
	}
	e.ns = ns
	return nil
}

// resolvePath turns a PATH argument into a clean path relative to the
// workspace root: absolute paths must lie inside --workspace.
func (e *env) resolvePath(p string) (string, error) {
	if filepath.IsAbs(p) {
		if e.g.workspace == "" {
			return "", usagef("path %q is absolute: give it relative to the workspace root, or set --workspace", p)
		}
		root, err := filepath.Abs(e.g.workspace)
		if err != nil {
			return "", usagef("--workspace: %v", err)
		}
		rel, err := filepath.Rel(root, p)
		if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			return "", usagef("path %q is outside the workspace %s", p, root)
		}
		p = filepath.ToSlash(rel)
	}
	clean, err := subjects.CleanPath(p)
	if err != nil {
		return "", usagef("%v", err)
	}
	return clean, nil
}

// runAuthz is `coord-agent authz`: exit 0 with the block on stdout (or
// with help), 1 when a secret file cannot be written, 2 on a usage error.
func runAuthz(args []string, stdout, stderr io.Writer) int {
	err := authz.Run(args, stdout, stderr)
	var pathErr *fs.PathError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &pathErr):
		fmt.Fprintf(stderr, "coord-agent authz: %v\n", err)
		return 1
	default:
		fmt.Fprintf(stderr, "coord-agent authz: %v\n", err)
		return 2
	}
}
