package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/cogos-dev/coord/coord"
)

// usageError is a mistake in the command line: exit 2 with usage.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, v ...any) error { return &usageError{fmt.Sprintf(format, v...)} }

// globals are the flags every subcommand takes, before or after it.
type globals struct {
	agent     string
	nats      string
	workspace string
	sidecar   string
	dataDir   string
	json      bool
	creds     coord.Credentials // NATS login of the direct backend
}

func (g *globals) register(fs *flag.FlagSet) {
	fs.StringVar(&g.agent, "agent", g.agent, "agent ID (default $COG_AGENT_ID, else $USER)")
	fs.StringVar(&g.nats, "nats", g.nats, "NATS URL (default $COG_NATS_URL, $NATS_URL, or the sidecar's)")
	fs.StringVar(&g.workspace, "workspace", g.workspace, "workspace root: sets the namespace and resolves absolute paths (default $COG_WORKSPACE)")
	fs.StringVar(&g.sidecar, "sidecar", g.sidecar, "sidecar HTTP address (default $COG_SIDECAR, else the one in the data dir)")
	fs.StringVar(&g.dataDir, "data", g.dataDir, "data dir where serve writes sidecar.json (default $COG_DATA_DIR, ~/.local/share/coord)")
	fs.BoolVar(&g.json, "json", g.json, "print JSON instead of tables")
	g.creds.AddFlags(fs)
}

func envGlobals() globals {
	return globals{
		agent:     os.Getenv("COG_AGENT_ID"),
		workspace: os.Getenv("COG_WORKSPACE"),
		sidecar:   os.Getenv("COG_SIDECAR"),
	}
}

// command is one subcommand's flag set and its positional arguments.
type command struct {
	name  string
	args  string // "PATH" for usage
	short string
	fs    *flag.FlagSet
	pos   []string
}

func newCommand(name, args, short string, g *globals) *command {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	g.register(fs)
	return &command{name: name, args: args, short: short, fs: fs}
}

// parse parses flags anywhere among the positional arguments ("--" ends
// the flags) and checks the count of positional arguments.
func (c *command) parse(args []string, min, max int) error {
	var rest []string
	for i, a := range args {
		if a == "--" {
			rest = args[i+1:]
			args = args[:i]
			break
		}
	}
	for {
		if err := c.fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return err
			}
			return usagef("%s: %v", c.name, err)
		}
		args = c.fs.Args()
		if len(args) == 0 {
			break
		}
		c.pos = append(c.pos, args[0])
		args = args[1:]
	}
	c.pos = append(c.pos, rest...)
	switch {
	case len(c.pos) < min:
		return usagef("%s: missing argument (usage: coord-agent %s %s)", c.name, c.name, c.args)
	case max >= 0 && len(c.pos) > max:
		return usagef("%s: too many arguments %q (usage: coord-agent %s %s)", c.name, c.pos[max:], c.name, c.args)
	}
	return nil
}

// usage writes the command's usage and flags.
func (c *command) usage(w io.Writer) {
	fmt.Fprintf(w, "usage: coord-agent %s %s\n\n%s\n\nflags:\n", c.name, c.args, c.short)
	c.fs.SetOutput(w)
	c.fs.PrintDefaults()
	c.fs.SetOutput(io.Discard)
}

// durationFlag is a flag.Value holding a duration that must be positive.
type durationFlag struct {
	d   time.Duration
	set bool
}

func (f *durationFlag) String() string {
	if !f.set {
		return ""
	}
	return f.d.String()
}

func (f *durationFlag) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%q is not a duration like 30s, 5m or 1h", s)
	}
	if d <= 0 {
		return fmt.Errorf("%q: want a positive duration", s)
	}
	f.d, f.set = d, true
	return nil
}

// listFlag is a comma-separated list.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(s string) error {
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*l = append(*l, p)
		}
	}
	return nil
}
