// Command coord-agent is coord's sidecar (`coord-agent serve`) and CLI
// (claim, release, broadcast, handoff, checkpoint, wait, status, ...).
// Everything but serve's flags and run loop lives in internal/cli and
// internal/sidecar.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/cogos-dev/coord/internal/bench"
	"github.com/cogos-dev/coord/internal/cli"
	"github.com/cogos-dev/coord/internal/sidecar"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if len(os.Args) > 1 && os.Args[1] == "serve" {
		os.Exit(serve(ctx, os.Args[2:]))
	}
	if len(os.Args) > 1 && os.Args[1] == "bench" {
		os.Exit(benchCmd(ctx, os.Args[2:]))
	}
	os.Exit(cli.Run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func serve(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var cfg sidecar.Config
	fs.StringVar(&cfg.DataDir, "data", "", "data dir: JetStream store and sidecar.json (default $COG_DATA_DIR, $XDG_DATA_HOME/coord, ~/.local/share/coord)")
	fs.IntVar(&cfg.Port, "port", sidecar.DefaultPort, "embedded server's client port on loopback (0: any free port)")
	fs.StringVar(&cfg.HTTPAddr, "http", sidecar.DefaultHTTP, "local HTTP API address (port 0: any free port)")
	fs.StringVar(&cfg.NATSURL, "nats", cli.FirstEnv("COG_NATS_URL", "NATS_URL"), "join this NATS server or cluster instead of embedding one (default $COG_NATS_URL, $NATS_URL)")
	fs.StringVar(&cfg.ConfigFile, "config", "", "run the embedded server from this nats-server config file (e.g. nats.conf)")
	fs.StringVar(&cfg.Agent, "agent", os.Getenv("COG_AGENT_ID"), "default agent of requests that name none (default $COG_AGENT_ID, $USER)")
	workspace := fs.String("workspace", os.Getenv("COG_WORKSPACE"), "workspace root: the default namespace")
	fs.DurationVar(&cfg.ClaimTTL, "ttl", 0, "lease of claims made without one (default 30s)")
	fs.IntVar(&cfg.Replicas, "replicas", 1, "replicas of the buckets and streams the sidecar creates (3 on a three-node cluster)")
	fs.BoolVar(&cfg.SyncAlways, "sync-always", false, "fsync every JetStream write before acknowledging it (see docs/operations.md)")
	cfg.Credentials.AddFlags(fs)
	level := fs.String("log-level", "info", "log level: debug, info, warn, error")
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
		if errors.Is(err, flag.ErrHelp) {
			serveUsage(os.Stdout, fs)
			return 0
		}
		if err == nil {
			err = fmt.Errorf("unexpected argument %q", fs.Arg(0))
		}
		fmt.Fprintf(os.Stderr, "coord-agent serve: %v\n\n", err)
		serveUsage(os.Stderr, fs)
		return 2
	}
	fs.Visit(func(f *flag.Flag) {
		cfg.DataDirSet = cfg.DataDirSet || f.Name == "data"
		cfg.PortSet = cfg.PortSet || f.Name == "port"
	})
	lvl, err := zerolog.ParseLevel(*level)
	if err != nil || cfg.ClaimTTL < 0 || cfg.Replicas < 1 || cfg.Replicas > 5 {
		fmt.Fprintf(os.Stderr, "coord-agent serve: bad --log-level, --ttl or --replicas\n\n")
		serveUsage(os.Stderr, fs)
		return 2
	}
	if *workspace != "" {
		if cfg.Namespace, err = cli.NamespaceFor(*workspace); err != nil {
			fmt.Fprintf(os.Stderr, "coord-agent serve: --workspace: %v\n", err)
			return 2
		}
	}
	cfg.Log = cli.Logger(os.Stderr).Level(lvl)
	cfg.NATSDebug = lvl <= zerolog.DebugLevel

	sc, err := sidecar.Start(ctx, cfg)
	if err != nil {
		cfg.Log.Error().Err(err).Msg("cannot start")
		return 1
	}
	in := sc.Info()
	fmt.Printf("coord-agent serving (pid %d, agent %s, namespace %s)\n", in.PID, in.Agent, in.Namespace)
	fmt.Printf("  NATS:      %s (%s)\n  HTTP API:  %s\n  data dir:  %s\n", in.NATSURL, in.Mode, in.HTTP, in.DataDir)
	if in.StoreDir != "" {
		fmt.Printf("  JetStream: %s\n", in.StoreDir)
	}
	code := 0
	select {
	case <-ctx.Done():
		cfg.Log.Info().Msg("signal: releasing claims and stopping")
	case err := <-sc.Served():
		if !errors.Is(err, http.ErrServerClosed) {
			cfg.Log.Error().Err(err).Msg("HTTP API stopped")
			code = 1
		}
	}
	sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := sc.Shutdown(sctx); err != nil {
		cfg.Log.Error().Err(err).Msg("shutdown")
		return 1
	}
	cfg.Log.Info().Msg("stopped")
	return code
}

func serveUsage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprint(w, "usage: coord-agent serve [flags]\n\nRun the sidecar: an embedded NATS server with JetStream (or --nats / --config),\nthe local HTTP API, and the agents' claims kept alive. SIGINT/SIGTERM release the\nclaims and exit 0.\n\nflags:\n")
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
}

// benchCmd runs `coord-agent bench`: scenario benchmarks against the
// embedded server (or --nats URL); see docs/performance.md.
func benchCmd(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	cfg := bench.Flags(fs)
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		if err == nil {
			fmt.Fprintf(os.Stderr, "coord-agent bench: unexpected argument %q\n", fs.Arg(0))
		}
		return 2
	}
	cfg.Progress = os.Stderr
	if _, err := bench.Run(ctx, *cfg, os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "coord-agent bench: %v\n", err)
		return 1
	}
	return 0
}
