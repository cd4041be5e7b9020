// Command natsnode is one member of a test cluster run as a child process,
// so that tests can crash it with SIGKILL (an in-process Shutdown hands
// leadership over first and is not a crash). It embeds nats-server through
// coord/embedded, as the sidecar does, plus the cluster block given by flags.
// testenv builds it once per test binary; it is not meant for users.
//
// It prints "ready" on stdout once it accepts connections, logs to stderr,
// and exits on SIGTERM or SIGINT after a clean shutdown.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/cogos-dev/coord/coord/embedded"
)

func main() {
	var (
		name        = flag.String("name", "", "server name (unique in the cluster)")
		store       = flag.String("store", "", "JetStream store directory")
		port        = flag.Int("port", -1, "client port")
		httpPort    = flag.Int("http", 0, "monitoring port (0: none)")
		clusterName = flag.String("cluster", "", "cluster name")
		clusterPort = flag.Int("cluster-port", -1, "route port")
		routes      = flag.String("routes", "", "comma-separated route URLs of the other members")
		syncAlways  = flag.Bool("sync-always", false, "fsync every write before acknowledging it")
		debug       = flag.Bool("debug", false, "debug logging")
	)
	flag.Parse()
	cfg := embedded.Config{
		StoreDir:    *store,
		Port:        *port,
		ServerName:  *name,
		SyncAlways:  *syncAlways,
		ClusterName: *clusterName,
		ClusterPort: *clusterPort,
		HTTPPort:    *httpPort,
		Debug:       *debug,
	}
	if *routes != "" {
		cfg.Routes = strings.Split(*routes, ",")
	}
	opts, err := embedded.Options(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "natsnode:", err)
		os.Exit(2)
	}
	opts.NoLog = false
	s, err := server.NewServer(opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "natsnode:", err)
		os.Exit(1)
	}
	s.ConfigureLogger()
	s.Start()
	if !s.ReadyForConnections(30 * time.Second) {
		fmt.Fprintln(os.Stderr, "natsnode: not ready for connections within 30s")
		s.Shutdown()
		os.Exit(1)
	}
	fmt.Println("ready")
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	s.Shutdown()
	s.WaitForShutdown()
}
