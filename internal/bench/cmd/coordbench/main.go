// Command coordbench runs coord's benchmark scenarios (the same code as
// `coord-agent bench`), with an optional CPU profile of the whole run.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"

	"github.com/cogos-dev/coord/internal/bench"
)

func main() {
	fs := flag.NewFlagSet("coordbench", flag.ExitOnError)
	cfg := bench.Flags(fs)
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the run to this file")
	_ = fs.Parse(os.Args[1:]) // ExitOnError: Parse exits on a bad flag
	cfg.Progress = os.Stderr
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, cfg, *cpuprofile); err != nil {
		fmt.Fprintln(os.Stderr, "coordbench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, cfg *bench.Config, cpuprofile string) error {
	if cpuprofile != "" {
		f, err := os.Create(cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	_, err := bench.Run(ctx, *cfg, os.Stdout)
	return err
}
