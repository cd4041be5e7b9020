package testenv

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

func createR3Bucket(t *testing.T, c *Cluster) jetstream.KeyValue {
	t.Helper()
	js, err := jetstream.New(c.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var kv jetstream.KeyValue
	for {
		kv, err = js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "b", Replicas: 3})
		if err == nil || ctx.Err() != nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("create R3 bucket: %v", err)
	}
	c.WaitBucketCurrent("b", 20*time.Second)
	return kv
}

// getRetry reads key until it can, each try bounded: a read sent just as a
// node restarts can be dropped unanswered, and would otherwise hold the
// whole deadline.
func getRetry(t *testing.T, kv jetstream.KeyValue, key string, within time.Duration) (jetstream.KeyValueEntry, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	for {
		gctx, gcancel := context.WithTimeout(ctx, 500*time.Millisecond)
		e, err := kv.Get(gctx, key)
		gcancel()
		if err == nil || ctx.Err() != nil {
			return e, err
		}
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// putRetry writes through a failover: the first writes after a crash can
// time out until a new leader is elected.
func putRetry(t *testing.T, kv jetstream.KeyValue, key, val string, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	for {
		pctx, pcancel := context.WithTimeout(ctx, time.Second)
		_, err := kv.PutString(pctx, key, val)
		pcancel()
		if err == nil {
			return time.Since(start)
		}
		if ctx.Err() != nil {
			t.Fatalf("put %s within %v: %v", key, within, err)
		}
	}
}

func TestClusterRestartKeepsData(t *testing.T) {
	c := StartCluster(t, 3)
	kv := createR3Bucket(t, c)
	putRetry(t, kv, "k", "v1", 10*time.Second)

	n := c.Node(1)
	n.Restart()
	if !n.Running() {
		t.Fatal("node not running after Restart")
	}
	c.WaitBucketCurrent("b", 30*time.Second)
	// Restart a second node: the value must survive on the stores.
	c.Node(0).Stop()
	c.Node(0).Start()
	c.WaitBucketCurrent("b", 30*time.Second)
	e, err := getRetry(t, kv, "k", 10*time.Second)
	if err != nil || string(e.Value()) != "v1" {
		t.Fatalf("after restarts: got %v, %v; want v1", e, err)
	}
}

func TestProcessClusterKillLeader(t *testing.T) {
	c := StartProcessCluster(t, 3)
	kv := createR3Bucket(t, c)
	putRetry(t, kv, "k", "v1", 10*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	leader, _, err := c.StreamLeader(ctx, "KV_b")
	if err != nil {
		t.Fatal(err)
	}
	leader.Kill()
	if leader.Running() {
		t.Fatal("killed node still running")
	}
	took := putRetry(t, kv, "k", "v2", 30*time.Second)
	t.Logf("write after SIGKILL of stream leader %s succeeded after %v", leader.Name(), took)
	nl, err := c.AwaitStreamCurrent(ctx, "KV_b")
	if err != nil {
		t.Fatal(err)
	}
	if nl == leader {
		t.Fatalf("killed node %s still reported as leader", leader.Name())
	}
	leader.Start()
	if _, err := c.AwaitStreamCurrent(ctx, "KV_b"); err != nil {
		t.Fatal(err)
	}
	e, err := kv.Get(ctx, "k")
	if err != nil || string(e.Value()) != "v2" {
		t.Fatalf("after crash and restart: got %v, %v; want v2", e, err)
	}
	// The restarted node learns the meta leader shortly after it rejoins.
	if _, err := c.AwaitMetaLeader(ctx); err != nil {
		t.Fatalf("meta leader after restart: %v", err)
	}
}

func TestKillNeedsProcessCluster(t *testing.T) {
	ft := &fakeT{TB: t}
	c := &Cluster{t: ft}
	n := &Node{c: c}
	func() {
		defer func() { _ = recover() }()
		n.Kill()
	}()
	if !errors.Is(ft.err, errFatal) {
		t.Fatal("Kill of an in-process node did not fail the test")
	}
}

var errFatal = errors.New("fatal")

type fakeT struct {
	testing.TB
	err error
}

func (f *fakeT) Helper() {}
func (f *fakeT) Fatalf(string, ...any) {
	f.err = errFatal
	panic(errFatal)
}
