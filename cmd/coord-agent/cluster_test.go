package main_test

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cogos-dev/coord/internal/sidecar"
)

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// nodeConf follows nats.conf's instructions for three nodes: the shipped
// file with its server name changed and the cluster block uncommented.
func nodeConf(t *testing.T, shipped string, n int, routes []int) string {
	t.Helper()
	conf := strings.Replace(shipped, "server_name: coord-1", fmt.Sprintf("server_name: coord-%d", n), 1)
	i := strings.Index(conf, "# cluster {")
	if i < 0 {
		t.Fatal("nats.conf has no commented cluster block")
	}
	var block []string
	for _, line := range strings.Split(conf[i:], "\n") {
		block = append(block, strings.TrimPrefix(strings.TrimPrefix(line, "#"), " "))
	}
	cluster := strings.Join(block, "\n")
	cluster = strings.Replace(cluster, "listen: 127.0.0.1:6222", fmt.Sprintf("listen: 127.0.0.1:%d", routes[n-1]), 1)
	for k, def := range []int{6222, 6223, 6224} {
		cluster = strings.Replace(cluster, fmt.Sprintf("nats-route://127.0.0.1:%d", def), fmt.Sprintf("nats-route://127.0.0.1:%d", routes[k]), 1)
	}
	path := filepath.Join(t.TempDir(), fmt.Sprintf("node%d.conf", n))
	if err := os.WriteFile(path, []byte(conf[:i]+cluster), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestThreeNodes runs three sidecars on nats.conf's cluster block, R3:
// a claim made on one node is seen on the others, and survives the
// SIGKILL of another node; the killed node's own claims expire.
func TestThreeNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("three server processes")
	}
	shipped, err := os.ReadFile("../../nats.conf")
	if err != nil {
		t.Fatal(err)
	}
	routes := []int{freePort(t), freePort(t), freePort(t)}
	dirs := []string{t.TempDir(), t.TempDir(), t.TempDir()}
	// All three must start together: each waits for the cluster to form.
	nodes := make([]*proc, 3)
	done := make(chan int, 3)
	for i := range nodes {
		go func() {
			conf := nodeConf(t, string(shipped), i+1, routes)
			nodes[i] = serveNoWait(t, dirs[i], "--config", conf, "--replicas", "3")
			done <- i
		}()
	}
	for range nodes {
		<-done
	}
	for i := range nodes {
		nodes[i].waitUp(t, 60*time.Second)
	}
	must(t, dirs[0], "alice", "claim", "src/main.go")
	must(t, dirs[2], "carol", "claim", "carol/file", "--ttl", "2s")
	if r := must(t, dirs[1], "", "owner", "src/main.go"); strings.TrimSpace(r.stdout) != "alice" {
		t.Fatalf("owner on node 2: %v", r)
	}
	var st sidecar.Status
	mustJSON(t, dirs[1], "bob", &st, "status")
	if st.Server.Cluster != "coord" {
		t.Errorf("status should name the cluster: %+v", st.Server)
	}
	for _, s := range st.Stores {
		if s.Name == "coord-claims" && (s.Replicas != 3 || s.Leader == "") {
			t.Errorf("coord-claims should be R3 with a leader: %+v", s)
		}
	}

	nodes[2].kill9()
	took := eventually(t, 30*time.Second, "carol's claim expiring after node 3's SIGKILL", func() bool {
		return cli(t, dirs[1], "", "owner", "carol/file").code == 1
	})
	t.Logf("node 3's 2s claim gone %v after its SIGKILL (includes a leader election)", took)
	// Calls right after a node's crash can time out while a new leader is
	// elected (4 to 6 s): the claim must be there once one is.
	eventually(t, 30*time.Second, "alice's claim readable after losing node 3", func() bool {
		r := cli(t, dirs[1], "", "owner", "src/main.go")
		if r.code == 0 && strings.TrimSpace(r.stdout) != "alice" {
			t.Fatalf("alice's claim after losing node 3: %v", r)
		}
		return r.code == 0
	})
}
