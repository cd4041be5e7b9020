package testenv

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/cogos-dev/coord/coord/embedded"
)

// Node is one member of a Cluster. Its ports and store survive Stop, Kill
// and Start, so a restarted node rejoins with its data and clients find it
// at the same URL.
type Node struct {
	c           *Cluster
	index       int
	name        string
	dir         string
	port        int
	clusterPort int
	httpPort    int
	process     bool
	bin         string
	syncAlways  bool
	opts        []Option

	mu   sync.Mutex
	srv  *server.Server // in-process node
	cmd  *exec.Cmd      // child-process node
	done chan struct{}  // closed when the child has exited
}

// Name is the node's server name.
func (n *Node) Name() string { return n.name }

// Index is the node's position in the cluster (0-based).
func (n *Node) Index() int { return n.index }

// URL is the node's client URL.
func (n *Node) URL() string { return fmt.Sprintf("nats://127.0.0.1:%d", n.port) }

// RouteURL is the node's cluster (route) URL.
func (n *Node) RouteURL() string { return fmt.Sprintf("nats-route://127.0.0.1:%d", n.clusterPort) }

// StoreDir is the node's JetStream store.
func (n *Node) StoreDir() string { return filepath.Join(n.dir, "store") }

// NATS is the running in-process server (nil for a child process or a
// stopped node).
func (n *Node) NATS() *server.Server {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.srv
}

// Running reports whether the node is up.
func (n *Node) Running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.process {
		if n.cmd == nil {
			return false
		}
		select {
		case <-n.done:
			return false
		default:
			return true
		}
	}
	return n.srv != nil
}

// Start starts a stopped node again with the same store and ports.
func (n *Node) Start() {
	n.c.t.Helper()
	if err := n.start(); err != nil {
		n.c.t.Fatalf("testenv: %v", err)
	}
}

// Stop shuts the node down cleanly (an in-process Shutdown, SIGTERM for a
// child). A clean stop hands leadership over first: it is not a crash.
func (n *Node) Stop() {
	n.c.t.Helper()
	if err := n.stop(false); err != nil {
		n.c.t.Fatalf("testenv: %v", err)
	}
}

// Kill crashes a child-process node with SIGKILL: no leadership handover,
// no flush. It fails the test on an in-process node, which cannot crash.
func (n *Node) Kill() {
	n.c.t.Helper()
	if !n.process {
		n.c.t.Fatalf("testenv: Kill needs a process cluster (StartProcessCluster)")
	}
	if err := n.stop(true); err != nil {
		n.c.t.Fatalf("testenv: %v", err)
	}
}

// Restart stops the node cleanly and starts it again with the same store.
func (n *Node) Restart() {
	n.c.t.Helper()
	n.Stop()
	n.Start()
}

func (n *Node) routes() []string {
	var rs []string
	for _, o := range n.c.nodes {
		if o != n {
			rs = append(rs, o.RouteURL())
		}
	}
	return rs
}

func (n *Node) config() embedded.Config {
	return embedded.Config{
		StoreDir:    n.StoreDir(),
		Port:        n.port,
		ServerName:  n.name,
		SyncAlways:  n.syncAlways,
		ClusterName: n.c.name,
		ClusterPort: n.clusterPort,
		Routes:      n.routes(),
		HTTPPort:    n.httpPort,
	}
}

func (n *Node) start() error {
	if n.Running() {
		return fmt.Errorf("%s is already running", n.name)
	}
	if n.process {
		return n.startProcess()
	}
	o, err := embedded.Options(n.config())
	if err != nil {
		return err
	}
	o.NoLog = false
	for _, f := range n.opts {
		f(o)
	}
	srv, err := embedded.Start(o, &tlog{t: n.c.t})
	if err != nil {
		return fmt.Errorf("%s: %w", n.name, err)
	}
	n.mu.Lock()
	n.srv = srv
	n.mu.Unlock()
	return nil
}

func (n *Node) logPath() string { return filepath.Join(n.dir, "server.log") }

func (n *Node) startProcess() error {
	cfg := n.config()
	args := []string{
		"-name", cfg.ServerName,
		"-store", cfg.StoreDir,
		"-port", strconv.Itoa(cfg.Port),
		"-http", strconv.Itoa(cfg.HTTPPort),
		"-cluster", cfg.ClusterName,
		"-cluster-port", strconv.Itoa(cfg.ClusterPort),
		"-routes", strings.Join(cfg.Routes, ","),
	}
	if cfg.SyncAlways {
		args = append(args, "-sync-always")
	}
	logf, err := os.OpenFile(n.logPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close() // the child has its own copy
	fmt.Fprintf(logf, "--- testenv: starting %s at %s\n", n.name, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(n.bin, args...)
	cmd.Stderr = logf
	cmd.SysProcAttr = childAttr()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%s: %w", n.name, err)
	}
	done := make(chan struct{})
	ready := make(chan bool, 1)
	go func() {
		// Read the ready line, then drain until the child exits, and
		// only then reap it (Wait closes the pipe).
		sc := bufio.NewScanner(stdout)
		ok := sc.Scan() && sc.Text() == "ready"
		ready <- ok
		_, _ = io.Copy(io.Discard, stdout)
		_ = cmd.Wait()
		close(done)
	}()
	select {
	case ok := <-ready:
		if !ok {
			<-done
			return fmt.Errorf("%s exited before it was ready (see %s)", n.name, n.logPath())
		}
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		return fmt.Errorf("%s not ready within 30s (see %s)", n.name, n.logPath())
	}
	n.mu.Lock()
	n.cmd, n.done = cmd, done
	n.mu.Unlock()
	return nil
}

func (n *Node) stop(kill bool) error {
	n.mu.Lock()
	srv, cmd, done := n.srv, n.cmd, n.done
	n.srv, n.cmd = nil, nil
	n.mu.Unlock()
	if srv != nil {
		srv.Shutdown()
		srv.WaitForShutdown()
	}
	if cmd == nil {
		return nil
	}
	select {
	case <-done:
		return nil // already gone
	default:
	}
	if kill {
		_ = cmd.Process.Kill()
	} else {
		_ = cmd.Process.Signal(os.Interrupt)
	}
	select {
	case <-done:
		return nil
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		return fmt.Errorf("%s did not stop within 20s; killed", n.name)
	}
}

// metaLeader asks the node's monitoring endpoint who leads the meta group.
func (n *Node) metaLeader(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/jsz", n.httpPort), nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var jsz struct {
		Meta *struct {
			Leader string `json:"leader"`
		} `json:"meta_cluster"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&jsz); err != nil {
		return "", fmt.Errorf("decoding /jsz: %w", err)
	}
	if jsz.Meta == nil {
		return "", errors.New("no meta_cluster in /jsz")
	}
	return jsz.Meta.Leader, nil
}

// dumpLog writes the last lines of a child node's log to t.Log.
func (n *Node) dumpLog(t testing.TB, lines int) {
	if !n.process {
		return
	}
	b, err := os.ReadFile(n.logPath())
	if err != nil {
		return
	}
	all := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	t.Logf("testenv: last %d lines of %s's log:\n%s", len(all), n.name, strings.Join(all, "\n"))
}

// nodeBinary builds the natsnode command once per test binary, without
// the race detector (the servers are not under test and -race slows them
// several times over). Binaries of earlier runs older than a day are removed.
var nodeBin struct {
	once sync.Once
	path string
	err  error
}

func nodeBinary() (string, error) {
	nodeBin.once.Do(func() {
		nodeBin.path, nodeBin.err = buildNode()
	})
	return nodeBin.path, nodeBin.err
}

func buildNode() (string, error) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("building natsnode: %w", err)
	}
	pruneOldBinaries()
	dir, err := os.MkdirTemp("", "coord-natsnode-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "natsnode")
	// Tests run in their package's directory, inside the module.
	cmd := exec.Command(goTool, "build", "-o", bin, natsnodePkg)
	cmd.Env = append(os.Environ(), "GOFLAGS=") // no -race or other test flags
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("building natsnode: %v\n%s", err, out)
	}
	return bin, nil
}

const natsnodePkg = "github.com/cogos-dev/coord/testenv/natsnode"

func pruneOldBinaries() {
	old, _ := filepath.Glob(filepath.Join(os.TempDir(), "coord-natsnode-*"))
	for _, d := range old {
		if fi, err := os.Stat(d); err == nil && time.Since(fi.ModTime()) > 24*time.Hour {
			_ = os.RemoveAll(d)
		}
	}
}
