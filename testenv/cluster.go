package testenv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Cluster is an N-node JetStream cluster on loopback: every node has a
// unique server name, the same cluster name, pre-picked client, route and
// monitoring ports, routes to all the others and its own store. Nodes run
// in-process (StartCluster) or as child processes that can be crashed with
// SIGKILL (StartProcessCluster). Every node is stopped when the test ends.
type Cluster struct {
	t     testing.TB
	name  string
	nodes []*Node

	connOnce sync.Once
	nc       *nats.Conn
	js       jetstream.JetStream
	connErr  error
}

// ClusterOption adjusts a cluster.
type ClusterOption func(*clusterConfig)

type clusterConfig struct {
	syncAlways bool
	opts       []Option
}

// WithSyncAlways makes every node fsync each write before acknowledging it
// (sync_interval: always), the setting that keeps acknowledged writes
// through a power loss of the whole cluster.
func WithSyncAlways() ClusterOption { return func(c *clusterConfig) { c.syncAlways = true } }

// WithNodeOptions changes the server options of in-process nodes.
func WithNodeOptions(opts ...Option) ClusterOption {
	return func(c *clusterConfig) { c.opts = append(c.opts, opts...) }
}

// StartCluster starts an n-node cluster in this process and waits until
// it has elected a meta leader. In-process nodes can be stopped and
// restarted, but not crashed: Shutdown hands leadership over first. Use
// StartProcessCluster to crash nodes.
func StartCluster(t testing.TB, n int, opts ...ClusterOption) *Cluster {
	t.Helper()
	return startCluster(t, n, false, opts)
}

// StartProcessCluster starts an n-node cluster of child processes (the
// natsnode command, built once per test binary) and waits until it has
// elected a meta leader. Node.Kill crashes a node with SIGKILL.
func StartProcessCluster(t testing.TB, n int, opts ...ClusterOption) *Cluster {
	t.Helper()
	return startCluster(t, n, true, opts)
}

func startCluster(t testing.TB, n int, process bool, opts []ClusterOption) *Cluster {
	t.Helper()
	if n < 1 {
		t.Fatalf("testenv: cluster of %d nodes", n)
	}
	var cfg clusterConfig
	for _, o := range opts {
		o(&cfg)
	}
	bin := ""
	if process {
		var err error
		if bin, err = nodeBinary(); err != nil {
			t.Fatalf("testenv: %v", err)
		}
	}
	ports, err := freePorts(3 * n)
	if err != nil {
		t.Fatalf("testenv: picking ports: %v", err)
	}
	c := &Cluster{t: t, name: fmt.Sprintf("C%d", ports[0])}
	root := t.TempDir()
	for i := range n {
		nd := &Node{
			c:           c,
			index:       i,
			name:        fmt.Sprintf("n%d", i+1),
			dir:         filepath.Join(root, fmt.Sprintf("n%d", i+1)),
			port:        ports[3*i],
			clusterPort: ports[3*i+1],
			httpPort:    ports[3*i+2],
			process:     process,
			bin:         bin,
			syncAlways:  cfg.syncAlways,
			opts:        cfg.opts,
		}
		if err := os.MkdirAll(nd.StoreDir(), 0o755); err != nil {
			t.Fatalf("testenv: %v", err)
		}
		c.nodes = append(c.nodes, nd)
	}
	t.Cleanup(c.shutdown)
	// Start them all before waiting on any: a node waits for its routes.
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i, nd := range c.nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = nd.start()
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("testenv: starting cluster: %v", err)
	}
	c.WaitMetaLeader(30 * time.Second)
	return c
}

// Name is the cluster name.
func (c *Cluster) Name() string { return c.name }

// Nodes returns the cluster's nodes.
func (c *Cluster) Nodes() []*Node { return append([]*Node(nil), c.nodes...) }

// Node returns node i (0-based).
func (c *Cluster) Node(i int) *Node { return c.nodes[i] }

// NodeByName returns the node with that server name, or nil.
func (c *Cluster) NodeByName(name string) *Node {
	for _, n := range c.nodes {
		if n.name == name {
			return n
		}
	}
	return nil
}

// URLs is every node's client URL, comma-separated (what WithURL and
// nats.Connect take): a client given it rides through the loss of a node.
func (c *Cluster) URLs() string {
	urls := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		urls[i] = n.URL()
	}
	return strings.Join(urls, ",")
}

// Connect opens a connection to all nodes that reconnects forever and is
// closed when the test ends.
func (c *Cluster) Connect(t testing.TB, opts ...nats.Option) *nats.Conn {
	t.Helper()
	base := []nats.Option{
		nats.MaxReconnects(-1),
		nats.ReconnectWait(50 * time.Millisecond),
		nats.Name(t.Name()),
	}
	nc, err := nats.Connect(c.URLs(), append(base, opts...)...)
	if err != nil {
		t.Fatalf("testenv: connect: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// jetStream is the cluster's own connection, used by the wait helpers.
func (c *Cluster) jetStream() (jetstream.JetStream, error) {
	c.connOnce.Do(func() {
		c.nc, c.connErr = nats.Connect(c.URLs(), nats.MaxReconnects(-1),
			nats.ReconnectWait(50*time.Millisecond), nats.Name("testenv cluster"),
			nats.RetryOnFailedConnect(true))
		if c.connErr == nil {
			c.js, c.connErr = jetstream.New(c.nc)
		}
	})
	return c.js, c.connErr
}

func (c *Cluster) shutdown() {
	var wg sync.WaitGroup
	for _, n := range c.nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := n.stop(false); err != nil {
				c.t.Logf("testenv: stopping %s: %v", n.name, err)
			}
		}()
	}
	wg.Wait()
	if c.nc != nil {
		c.nc.Close()
	}
	if c.t.Failed() {
		for _, n := range c.nodes {
			n.dumpLog(c.t, 40)
		}
	}
}

// pollInterval is how often the wait helpers look at the cluster's state.
const pollInterval = 50 * time.Millisecond

// MetaLeader returns the node all running nodes agree leads the meta
// group (the JetStream API), or an error saying why there is none.
func (c *Cluster) MetaLeader(ctx context.Context) (*Node, error) {
	leader := ""
	running := 0
	for _, n := range c.nodes {
		if !n.Running() {
			continue
		}
		running++
		l, err := n.metaLeader(ctx)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", n.name, err)
		}
		if l == "" {
			return nil, fmt.Errorf("%s knows no meta leader", n.name)
		}
		if leader != "" && l != leader {
			return nil, fmt.Errorf("nodes disagree on the meta leader (%s, %s)", leader, l)
		}
		leader = l
	}
	if running == 0 {
		return nil, errors.New("no node is running")
	}
	nd := c.NodeByName(leader)
	if nd == nil || !nd.Running() {
		return nil, fmt.Errorf("meta leader %q is not a running node", leader)
	}
	return nd, nil
}

// AwaitMetaLeader waits until MetaLeader answers or ctx ends.
func (c *Cluster) AwaitMetaLeader(ctx context.Context) (*Node, error) {
	return await(ctx, func(ctx context.Context) (*Node, error) { return c.MetaLeader(ctx) })
}

// WaitMetaLeader is AwaitMetaLeader bounded by timeout; it fails the test
// if no leader is elected in time.
func (c *Cluster) WaitMetaLeader(timeout time.Duration) *Node {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	n, err := c.AwaitMetaLeader(ctx)
	if err != nil {
		c.t.Fatalf("testenv: no meta leader within %v: %v", timeout, err)
	}
	return n
}

// StreamLeader returns the node leading stream, with the stream's info.
func (c *Cluster) StreamLeader(ctx context.Context, stream string) (*Node, *jetstream.StreamInfo, error) {
	js, err := c.jetStream()
	if err != nil {
		return nil, nil, err
	}
	rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	st, err := js.Stream(rctx, stream)
	if err != nil {
		return nil, nil, err
	}
	info := st.CachedInfo()
	if info.Cluster == nil || info.Cluster.Leader == "" {
		return nil, info, fmt.Errorf("stream %s has no leader", stream)
	}
	nd := c.NodeByName(info.Cluster.Leader)
	if nd == nil || !nd.Running() {
		return nil, info, fmt.Errorf("stream %s leader %q is not a running node", stream, info.Cluster.Leader)
	}
	return nd, info, nil
}

// StreamCurrent returns the stream's leader if every other running node
// holds a current replica of it.
func (c *Cluster) StreamCurrent(ctx context.Context, stream string) (*Node, error) {
	leader, info, err := c.StreamLeader(ctx, stream)
	if err != nil {
		return nil, err
	}
	current := map[string]bool{leader.name: true}
	for _, r := range info.Cluster.Replicas {
		if r.Current && !r.Offline {
			current[r.Name] = true
		}
	}
	want := info.Config.Replicas
	if want >= len(c.nodes) {
		for _, n := range c.nodes {
			if n.Running() && !current[n.name] {
				return nil, fmt.Errorf("stream %s: replica on %s not current", stream, n.name)
			}
		}
	} else if len(current) < min(want, c.running()) {
		return nil, fmt.Errorf("stream %s: %d of %d replicas current", stream, len(current), want)
	}
	return leader, nil
}

// AwaitStreamCurrent waits until StreamCurrent answers or ctx ends.
func (c *Cluster) AwaitStreamCurrent(ctx context.Context, stream string) (*Node, error) {
	return await(ctx, func(ctx context.Context) (*Node, error) { return c.StreamCurrent(ctx, stream) })
}

// WaitStreamCurrent is AwaitStreamCurrent bounded by timeout; it fails the
// test if the stream has no leader with current replicas in time.
func (c *Cluster) WaitStreamCurrent(stream string, timeout time.Duration) *Node {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	n, err := c.AwaitStreamCurrent(ctx, stream)
	if err != nil {
		c.t.Fatalf("testenv: stream %s not current within %v: %v", stream, timeout, err)
	}
	return n
}

// WaitBucketCurrent is WaitStreamCurrent for a KV bucket.
func (c *Cluster) WaitBucketCurrent(bucket string, timeout time.Duration) *Node {
	c.t.Helper()
	return c.WaitStreamCurrent("KV_"+bucket, timeout)
}

func (c *Cluster) running() int {
	k := 0
	for _, n := range c.nodes {
		if n.Running() {
			k++
		}
	}
	return k
}

// await polls f every pollInterval until it succeeds or ctx ends; the
// error then is f's last.
func await[T any](ctx context.Context, f func(context.Context) (T, error)) (T, error) {
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		v, err := f(ctx)
		if err == nil {
			return v, nil
		}
		select {
		case <-ctx.Done():
			return v, fmt.Errorf("%w (last: %v)", ctx.Err(), err)
		case <-tick.C:
		}
	}
}

// freePorts picks n distinct free loopback ports, holding them all open
// until every one is picked.
func freePorts(n int) ([]int, error) {
	ls := make([]net.Listener, 0, n)
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
